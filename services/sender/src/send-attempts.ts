import {
  type DeliveryPolicy,
  type EventEnvelope,
  type Logger,
  newEvent,
  parseEvent,
  QUEUE_PREFIX,
  UNCERTAIN_SENDS_KEY,
} from '@holdfast/core';
import type { EventWriter } from '@holdfast/producer';
import type { ChainableCommander, Redis } from 'ioredis';
import { SendError } from './errors.ts';
import type { Transport } from './transports/index.ts';

/** How long an unresent uncertain send stays listed for `holdfast status`. */
const UNCERTAIN_KEEP_MS = 30 * 24 * 3600 * 1000;

/** How long the outcome of a send is remembered, to stop a re-delivered job from sending again. */
const OUTCOME_TTL_SECONDS = 30 * 24 * 3600;

/**
 * `sent`: the provider accepted it (now, or by an attempt a lookup found). `uncertain`: an earlier
 * attempt may have gone out, the provider cannot tell, and the policy is at-most-once: not resent.
 * `rejected`: the provider refused it for good. A rejection the provider answered (it did not take
 * the message) does not stop a later run of the job, e.g. the replay of its dead letter once the
 * cause was fixed: that run sends again.
 */
export type SendOutcome = 'sent' | 'uncertain' | 'rejected';

export interface SendJobResult {
  outcome: SendOutcome;
  providerMessageId?: string;
  /** The event that records the outcome (`message.sent`, `.send-uncertain` or `.send-failed`). */
  outcomeEventId: string;
  /** False when an earlier delivery of this job already settled it: nothing was sent now. */
  sentNow: boolean;
}

/** What the earlier, unresolved attempt left in Redis. */
interface OpenAttempt {
  attempt: number;
  startedAt: Date;
}

/**
 * The delivery guarantee. Before every provider call a `message.send-attempted` event is spooled
 * (fsync) and an attempt marker set in Redis; the outcome is then recorded as an event and a
 * Redis outcome marker. A retry therefore finds one of three states:
 * - an outcome marker: the send is settled; the outcome event is recorded again (same id), nothing
 *   sent. Except a rejection the provider answered: it is recorded again, then the run goes on
 *   as below (it cannot be a second send, as the provider did not take the message);
 * - an attempt marker without an outcome: the earlier attempt crashed or timed out after calling
 *   the provider. It is resolved by asking the provider (`lookup`) where the API allows; where
 *   it does not, a `message.send-uncertain` event is recorded and the channel's delivery policy
 *   decides: at-least-once sends again, at-most-once does not;
 * - neither: no call reached the provider; send.
 * An error answer from the provider (it did not accept the message) clears the attempt marker,
 * so only calls whose fate is unknown ever count as uncertain.
 */
export class SendAttempts {
  readonly #redis: Redis;
  readonly #writer: EventWriter;
  readonly #log: Logger;

  constructor(redis: Redis, writer: EventWriter, log: Logger) {
    this.#redis = redis;
    this.#writer = writer;
    this.#log = log;
  }

  async deliver<M>(
    event: EventEnvelope,
    message: M,
    transport: Transport<M>,
    delivery: DeliveryPolicy,
    /**
     * The job's attempt (1-based), and whether it is its last: no retry follows a retryable
     * failure of a last attempt, so that failure is recorded.
     */
    job: { attempt: number; last: boolean } = { attempt: 1, last: false },
  ): Promise<SendJobResult> {
    const outcomeKey = `${QUEUE_PREFIX}:send-outcome:${event.id}`;
    const attemptKey = `${QUEUE_PREFIX}:send-attempt:${event.id}`;
    // Both markers in one round trip; the outcome, if there is one, decides.
    const [settled, open] = await Promise.all([this.#redis.get(outcomeKey), this.#openAttempt(attemptKey)]);
    /** The rejected call's number, when this run sends again after it: calls go on counting. */
    let rejectedAttempt = 0;
    if (settled) {
      const recorded = parseEvent(JSON.parse(settled));
      if (!isAnsweredRejection(recorded)) return this.#replay(recorded);
      // Rejected with an answer: nothing went out. This run (an operator's replay of the dead
      // letter, after fixing the cause) sends again; the rejection stays on record under its id.
      // Any attempt marker left since then is still resolved below, so no call of unknown fate
      // is ever sent twice.
      await this.#writer.submit(recorded, 'archive');
      rejectedAttempt = Number(recorded.data.attempt) || 0;
      this.#log.info(
        { eventId: event.id, rejectedAttempt: recorded.data.attempt },
        'earlier permanent rejection; the provider did not take the message: sending again',
      );
    }

    const outcome = (type: string, data: object) =>
      newEvent({
        type,
        occurredAt: new Date(),
        project: event.project,
        channel: event.channel,
        direction: 'outbound',
        subject: event.subject,
        category: event.category,
        data: { transport: transport.name, ...data },
      });
    const settle = async (recorded: EventEnvelope): Promise<void> => {
      // The marker holds the whole event so a retry records the very same event (same id, same
      // key): a crash before the submit below leaves a retry to record it. The outcome marker
      // outranks the attempt marker, so both change in one transaction.
      await commit(
        this.#redis
          .multi()
          .set(outcomeKey, JSON.stringify(recorded), 'EX', OUTCOME_TTL_SECONDS)
          .del(attemptKey),
      );
      await this.#writer.submit(recorded, 'archive');
    };

    if (open) {
      if (transport.lookup) {
        const found = await transport.lookup(message, open.startedAt);
        if (found.found) {
          const sent = outcome('message.sent', {
            providerMessageId: found.providerMessageId,
            attempt: open.attempt,
            resolvedBy: 'lookup',
          });
          await settle(sent);
          this.#log.info(
            { eventId: event.id, attempt: open.attempt },
            'earlier attempt found at the provider',
          );
          return {
            outcome: 'sent',
            providerMessageId: found.providerMessageId,
            outcomeEventId: sent.id,
            sentNow: false,
          };
        }
        this.#log.info(
          { eventId: event.id, attempt: open.attempt },
          'earlier attempt not at the provider; sending',
        );
      } else {
        const resolution = delivery === 'at-most-once' ? 'not-resent' : 'resent';
        const uncertain = outcome('message.send-uncertain', {
          attempt: open.attempt,
          policy: delivery,
          resolution,
        });
        this.#log.warn(
          { eventId: event.id, attempt: open.attempt, policy: delivery, resolution },
          'earlier attempt may have been sent; the provider cannot be asked',
        );
        if (resolution === 'not-resent') {
          // Listed first, for a person to decide (`holdfast status` counts these): a crash after
          // the outcome marker would otherwise leave it settled and unlisted.
          await this.#listUncertain(event);
          await settle(uncertain);
          return { outcome: 'uncertain', outcomeEventId: uncertain.id, sentNow: false };
        }
        await this.#writer.submit(uncertain, 'archive');
      }
    }

    // A stalled job runs again under the same job attempt: number calls, not job runs.
    const attempt = Math.max(job.attempt, Math.max(open?.attempt ?? 0, rejectedAttempt) + 1);
    await this.#writer.submit(outcome('message.send-attempted', { attempt }), 'archive');
    await commit(
      this.#redis
        .multi()
        .hset(attemptKey, { attempt, startedAt: new Date().toISOString() })
        .expire(attemptKey, OUTCOME_TTL_SECONDS),
    );

    let providerMessageId: string;
    try {
      ({ providerMessageId } = await transport.send(message));
    } catch (error) {
      const failure = asSendError(transport.name, error);
      // The provider answered with an error: this attempt certainly did not send.
      if (failure.reachedProvider === 'no') await this.#redis.del(attemptKey);
      if (!failure.retryable) {
        const rejected = outcome('message.send-failed', {
          attempt,
          reason: failure.message,
          // Whether a later run may send again (see isAnsweredRejection).
          reachedProvider: failure.reachedProvider,
          ...(failure.providerCode ? { providerCode: failure.providerCode } : {}),
          ...(failure.status ? { status: failure.status } : {}),
        });
        await settle(rejected);
      } else if (job.last) {
        // Out of retries: recorded, but not settled, so a replay of the dead letter sends again
        // (or, if this call's fate is unknown, resolves it as any retry would).
        await this.#writer.submit(
          outcome('message.send-failed', {
            attempt,
            reason: `retries exhausted: ${failure.message}`,
            reachedProvider: failure.reachedProvider,
            ...(failure.providerCode ? { providerCode: failure.providerCode } : {}),
            ...(failure.status ? { status: failure.status } : {}),
          }),
          'archive',
        );
      }
      throw failure;
    }
    const sent = outcome('message.sent', { providerMessageId, attempt });
    await settle(sent);
    return { outcome: 'sent', providerMessageId, outcomeEventId: sent.id, sentNow: true };
  }

  async #listUncertain(event: EventEnvelope): Promise<void> {
    const now = Date.now();
    await commit(
      this.#redis
        .multi()
        .zadd(UNCERTAIN_SENDS_KEY, now, `${event.channel}/${event.id}`)
        .zremrangebyscore(UNCERTAIN_SENDS_KEY, '-inf', now - UNCERTAIN_KEEP_MS),
    );
  }

  async #openAttempt(key: string): Promise<OpenAttempt | undefined> {
    const fields = await this.#redis.hgetall(key);
    if (!fields.attempt) return undefined;
    return { attempt: Number(fields.attempt), startedAt: new Date(fields.startedAt ?? 0) };
  }

  async #replay(recorded: EventEnvelope): Promise<SendJobResult> {
    await this.#writer.submit(recorded, 'archive');
    const providerMessageId = recorded.data.providerMessageId;
    const outcome: SendOutcome =
      recorded.type === 'message.sent'
        ? 'sent'
        : recorded.type === 'message.send-failed'
          ? 'rejected'
          : 'uncertain';
    if (outcome === 'rejected') {
      // The recorded reason is the original error's message, which already names the transport.
      const transport = String(recorded.data.transport);
      const reason = String(recorded.data.reason);
      throw new SendError(
        transport,
        reason.startsWith(`${transport}: `) ? reason.slice(transport.length + 2) : reason,
        {
          retryable: false,
          reachedProvider: recorded.data.reachedProvider === 'no' ? 'no' : 'unknown',
        },
      );
    }
    return {
      outcome,
      ...(typeof providerMessageId === 'string' ? { providerMessageId } : {}),
      outcomeEventId: recorded.id,
      sentNow: false,
    };
  }
}

/**
 * A recorded permanent rejection that the provider answered, so it certainly did not take the
 * message. Rejections recorded without `reachedProvider` (before it was recorded) or whose call's
 * fate was unknown stay settled: sending again could be a second email.
 */
function isAnsweredRejection(recorded: EventEnvelope): boolean {
  return recorded.type === 'message.send-failed' && recorded.data.reachedProvider === 'no';
}

/** Anything a transport threw that is not a SendError is treated as a call of unknown fate. */
function asSendError(transport: string, error: unknown): SendError {
  if (error instanceof SendError) return error;
  return new SendError(transport, (error as Error)?.message ?? String(error), {
    retryable: true,
    reachedProvider: 'unknown',
    cause: error,
  });
}

/** Runs a MULTI; ioredis reports a command that failed inside one per command, so check each. */
async function commit(transaction: ChainableCommander): Promise<void> {
  for (const [error] of (await transaction.exec()) ?? []) if (error) throw error;
}
