// The CDK app: `cdk synth` / `cdk deploy --all` run `node bin/holdfast.ts` (see cdk.json).
import { App } from 'aws-cdk-lib';
import { buildApp, resolveConfig } from '../src/index.ts';

const app = new App();
const config = await resolveConfig((key) => app.node.tryGetContext(key));
buildApp(app, config);
app.synth();
