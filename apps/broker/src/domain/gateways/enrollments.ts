import { DEFAULT_ROUTED_PORTS, PublicAddress, type RoutedPorts } from '@stagedoor/contract';
import type { Db } from '../../db/database.ts';
import type { AuditService } from '../audit/audit.service.ts';
import type { Clock } from '../clock.ts';
import { ConflictError, InvalidInputError, NotFoundError, UnauthenticatedError, isUniqueViolation } from '../errors.ts';
import { systemActor, type Actor } from '../identity/actor.ts';
import { hashToken, newToken } from '../identity/tokens.ts';
import type { EnrollmentRow, GatewayRow, GatewaysRepository } from './gateways.repository.ts';

export interface EnrollInput {
  token: string;
  name: string;
  /** Ignored: the address comes from the enrolment record. Older gateways still send it. */
  publicAddress?: string;
  portRangeStart: number;
  portRangeEnd: number;
  version?: string;
}

type Outcome = { gateway: GatewayRow; credential: string } | { refused: string; conflict?: true };

/**
 * Gateway enrolment (ADR 0016). An admin makes a one-time token, either for a new gateway or bound to
 * one existing gateway's id (a re-enrolment); the token's record says the address clients will dial,
 * so whoever holds the token cannot point clients elsewhere. A re-enrolment that changes the address
 * is audited when the admin asks for it and again when it takes effect, and the gateway shows it.
 */
export class GatewayEnrollments {
  constructor(private readonly deps: { db: Db; repo: GatewaysRepository; audit: AuditService; clock: Clock }) {}

  async createForNew(actor: Actor, input: { cluster: string; name?: string; publicAddress: string; routedPorts?: Partial<RoutedPorts>; sniDomain?: string; expiresInMinutes: number }): Promise<{ enrollment: EnrollmentRow; token: string }> {
    const publicAddress = checkedAddress(input.publicAddress);
    if (input.name) {
      const existing = await this.deps.repo.findByName(input.name);
      if (existing) throw new ConflictError(`gateway ${existing.name} exists: re-enrol it with POST /api/v1/gateways/${existing.id}/reenrollments`);
    }
    // The routed settings travel with the record, like the address: the new gateway starts with them.
    const routed = { routedPorts: input.routedPorts ? { ...DEFAULT_ROUTED_PORTS, ...input.routedPorts } : null, sniDomain: input.sniDomain ?? null };
    return this.#create(actor, { purpose: 'new', cluster: input.cluster, name: input.name ?? null, publicAddress, gatewayId: null, ...routed, expiresInMinutes: input.expiresInMinutes }, 'gateway.enrollment_create', null);
  }

  async createForExisting(actor: Actor, gatewayId: string, input: { publicAddress?: string; expiresInMinutes: number }): Promise<{ enrollment: EnrollmentRow; token: string }> {
    const gateway = await this.deps.repo.findById(gatewayId);
    if (!gateway) throw new NotFoundError('gateway', gatewayId);
    const publicAddress = input.publicAddress === undefined ? gateway.publicAddress : checkedAddress(input.publicAddress);
    return this.#create(actor, { purpose: 'reenroll', cluster: gateway.cluster, name: gateway.name, publicAddress, gatewayId, expiresInMinutes: input.expiresInMinutes }, 'gateway.reenrollment_create', gateway);
  }

  async #create(
    actor: Actor,
    fields: { purpose: 'new' | 'reenroll'; cluster: string; name: string | null; publicAddress: string; gatewayId: string | null; routedPorts?: RoutedPorts | null; sniDomain?: string | null; expiresInMinutes: number },
    action: string,
    gateway: GatewayRow | null,
  ): Promise<{ enrollment: EnrollmentRow; token: string }> {
    const token = newToken('sde_');
    const now = this.deps.clock.now();
    const { expiresInMinutes, ...row } = fields;
    const enrollment = await this.deps.db.transaction(async (tx) => {
      const created = await this.deps.repo.insertEnrollment({ ...row, tokenHash: hashToken(token), expiresAt: new Date(now.getTime() + expiresInMinutes * 60_000), createdBy: actor.userId, createdAt: now }, tx);
      const addressChange = gateway && gateway.publicAddress !== fields.publicAddress ? { from: gateway.publicAddress, to: fields.publicAddress } : null;
      await this.deps.audit.record(
        actor,
        {
          action,
          outcome: 'success',
          targetType: gateway ? 'gateway' : 'gateway_enrollment',
          targetId: gateway ? gateway.id : created.id,
          details: { enrollmentId: created.id, cluster: fields.cluster, name: fields.name, publicAddress: fields.publicAddress, addressChange, expiresAt: created.expiresAt.toISOString() },
        },
        tx,
      );
      return created;
    });
    return { enrollment, token };
  }

  list(pending: boolean | undefined, limit: number, offset: number) {
    return this.deps.repo.listEnrollments(pending ? this.deps.clock.now() : null, limit, offset);
  }

  /**
   * A gateway presents its one-time token and gets a control-channel credential. A token for a new
   * gateway makes one (the enrolment's name wins over the proposed one, and must be free); a token
   * bound to a gateway rotates that gateway's credential. Either way the address, cluster and (for a
   * re-enrolment) name come from the record. A refused token is audited with the caller's address.
   */
  async enroll(input: EnrollInput, sourceAddress: string | null): Promise<{ gateway: GatewayRow; credential: string }> {
    if (input.portRangeStart > input.portRangeEnd) {
      throw new InvalidInputError('portRangeStart must not be above portRangeEnd', [{ path: 'body.portRangeEnd', message: 'must be at least portRangeStart' }]);
    }
    const actor: Actor = { ...systemActor, username: `gateway:${input.name}`, sourceAddress };
    const credential = newToken('sdg_');
    let result: Outcome;
    try {
      result = await this.deps.db.transaction(async (tx): Promise<Outcome> => {
        const now = this.deps.clock.now();
        const enrollment = await this.deps.repo.lockEnrollmentByTokenHash(hashToken(input.token), tx);
        if (!enrollment) return { refused: 'unknown enrolment token' };
        if (enrollment.usedAt) return { refused: 'the enrolment token was used already' };
        if (enrollment.expiresAt <= now) return { refused: 'the enrolment token has expired' };
        const publicAddress = enrollment.publicAddress;
        if (!publicAddress) return { refused: 'the enrolment token has no public address (made before enrolment records carried one): create a new one' };
        const fields = { portRangeStart: input.portRangeStart, portRangeEnd: input.portRangeEnd, version: input.version ?? null, credentialHash: hashToken(credential), updatedAt: now };
        const proposed = input.publicAddress !== undefined && input.publicAddress !== publicAddress ? { proposedPublicAddress: input.publicAddress } : {};
        let gateway: GatewayRow;
        if (enrollment.purpose === 'reenroll') {
          const existing = enrollment.gatewayId ? await this.deps.repo.lockById(enrollment.gatewayId, tx) : undefined;
          if (!existing) return { refused: 'the gateway this token re-enrols has been deleted' };
          const moved = existing.publicAddress !== publicAddress;
          gateway = (await this.deps.repo.update(existing.id, { ...fields, publicAddress, ...(moved ? { previousPublicAddress: existing.publicAddress, publicAddressChangedAt: now } : {}) }, tx))!;
          if (moved) {
            await this.deps.audit.record(
              actor,
              { action: 'gateway.address_change', outcome: 'success', targetType: 'gateway', targetId: gateway.id, details: { name: gateway.name, from: existing.publicAddress, to: publicAddress, enrollmentId: enrollment.id, authorisedBy: enrollment.createdBy } },
              tx,
            );
          }
        } else {
          const name = enrollment.name ?? input.name;
          const taken = await this.deps.repo.findByName(name, tx);
          if (taken) return { refused: `a gateway named "${taken.name}" exists: re-enrol it with a token from POST /api/v1/gateways/${taken.id}/reenrollments`, conflict: true };
          const routed = { ...(enrollment.routedPorts ? { routedPorts: enrollment.routedPorts, routedPortsSet: true } : {}), sniDomain: enrollment.sniDomain };
          gateway = await this.deps.repo.insert({ name, cluster: enrollment.cluster, status: 'enrolled', health: 'unknown', createdAt: now, publicAddress, ...routed, ...fields }, tx);
        }
        await this.deps.repo.markEnrollmentUsed(enrollment.id, gateway.id, now, tx);
        await this.deps.audit.record(
          actor,
          {
            action: 'gateway.enroll',
            outcome: 'success',
            targetType: 'gateway',
            targetId: gateway.id,
            details: { name: gateway.name, cluster: gateway.cluster, reenrolled: enrollment.purpose === 'reenroll', enrollmentId: enrollment.id, publicAddress, ports: `${input.portRangeStart}-${input.portRangeEnd}`, ...proposed },
          },
          tx,
        );
        return { gateway, credential };
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw new ConflictError(`a gateway named "${input.name}" already exists: re-enrol it with a token from POST /api/v1/gateways/{id}/reenrollments`);
      throw err;
    }
    if ('refused' in result) {
      // Outside the transaction: the refusal is recorded even though nothing else is written.
      await this.deps.audit.record(actor, { action: 'gateway.enroll', outcome: 'denied', targetType: 'gateway', reason: result.refused, details: { name: input.name } });
      if (result.conflict) throw new ConflictError(`enrolment refused: ${result.refused}`);
      throw new UnauthenticatedError(`enrolment refused: ${result.refused}`);
    }
    return result;
  }
}

function checkedAddress(address: string): string {
  const parsed = PublicAddress.safeParse(address);
  if (!parsed.success) throw new InvalidInputError(`publicAddress ${parsed.error.issues[0]?.message ?? 'is invalid'}`, [{ path: 'body.publicAddress', message: parsed.error.issues[0]?.message ?? 'invalid' }]);
  return parsed.data;
}
