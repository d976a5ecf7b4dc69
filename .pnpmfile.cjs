// valibot (under Bull Board, on ingest) declares typescript as an optional peer; pnpm fills it from
// the workspace's own typescript, which would ship the compiler in ingest's production closure.
// Holdfast never uses valibot's TypeScript integration, so the peer is dropped.
module.exports = {
  hooks: {
    readPackage(pkg) {
      if (pkg.name === 'valibot' && pkg.peerDependencies) {
        delete pkg.peerDependencies.typescript;
        if (pkg.peerDependenciesMeta) delete pkg.peerDependenciesMeta.typescript;
      }
      return pkg;
    },
  },
};
