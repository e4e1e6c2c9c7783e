import { hash, verify } from '@node-rs/argon2';

/**
 * argon2id with the OWASP-recommended floor (19 MiB, 2 passes, 1 lane). The parameters live in
 * the PHC string, so raising them later keeps old hashes verifiable.
 */
// `algorithm: 2` is Argon2id (the package's const enum cannot be imported under verbatimModuleSyntax).
const PARAMS = { algorithm: 2, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

export function hashPassword(password: string): Promise<string> {
  return hash(password, PARAMS);
}

export async function verifyPassword(phc: string, password: string): Promise<boolean> {
  try {
    return await verify(phc, password);
  } catch {
    return false; // a malformed stored hash never authenticates
  }
}

/**
 * A fixed hash to verify against when the user does not exist, so a wrong username costs the same
 * time as a wrong password and login timing does not reveal which usernames exist.
 */
let dummy: Promise<string> | undefined;
export async function burnPasswordCheck(password: string): Promise<void> {
  dummy ??= hashPassword('stagedoor-timing-equaliser');
  await verifyPassword(await dummy, password);
}
