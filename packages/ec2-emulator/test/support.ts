// Shared test helpers: an emulator on a free port with a fixed clock, and a real EC2 client.

import { EC2Client } from '@aws-sdk/client-ec2';
import type { EC2ClientConfig } from '@aws-sdk/client-ec2';
import { expect } from 'vitest';
import { startEc2Emulator } from '../src/index.ts';
import type { Ec2Emulator, Ec2EmulatorOptions } from '../src/index.ts';

export const BASE_TIME = Date.UTC(2025, 0, 6, 9, 0, 0);

export const TEST_DELAYS = { pendingMs: 1_000, stoppingMs: 2_000, shuttingDownMs: 3_000 };

export function startTestEmulator(options: Ec2EmulatorOptions = {}): Promise<Ec2Emulator> {
  return startEc2Emulator({ clock: () => BASE_TIME, delays: TEST_DELAYS, ...options });
}

export function ec2Client(emulator: Ec2Emulator, overrides: Partial<EC2ClientConfig> = {}): EC2Client {
  return new EC2Client({
    region: 'us-east-1',
    endpoint: emulator.url,
    credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'x' },
    maxAttempts: 1,
    ...overrides,
  });
}

interface SdkError {
  name: string;
  message: string;
  $metadata?: { httpStatusCode?: number };
}

/** Asserts that `promise` fails with EC2 error `code` (and HTTP `status`, when given). */
export async function expectEc2Error(promise: Promise<unknown>, code: string, status?: number): Promise<SdkError> {
  const error = (await promise.then(
    () => {
      throw new Error(`expected ${code}, but the call succeeded`);
    },
    (e: unknown) => e,
  )) as SdkError;
  expect(error.name).toBe(code);
  if (status !== undefined) expect(error.$metadata?.httpStatusCode).toBe(status);
  return error;
}

/** A syntactically valid SigV4 header; the emulator reads the key id but not the signature. */
export function fakeSigV4(accessKeyId = 'AKIDEXAMPLE'): string {
  return `AWS4-HMAC-SHA256 Credential=${accessKeyId}/20250106/us-east-1/ec2/aws4_request, SignedHeaders=host;x-amz-date, Signature=0123abcd`;
}

export async function rawQuery(emulator: Ec2Emulator, body: string, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  const response = await fetch(`${emulator.url}/`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8', ...headers },
    body,
  });
  return { status: response.status, text: await response.text() };
}
