// The HTTP edge: EC2 Query requests on any path, the JSON control API under /_emulator/.
// This is the only place requests and responses meet the network.

import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { EmulatorCore } from './core.ts';
import { CONTROL_PREFIX } from './control-http.ts';
import type { ControlResponse } from './control-http.ts';
import { PRICING_TARGET_PREFIX } from './pricing/get-products.ts';
import { QueryParams } from './query.ts';
import { errorDocument } from './xml.ts';
import { requestId } from './ids.ts';

const MAX_BODY_BYTES = 10 * 1024 * 1024;

class BodyTooLarge extends Error {}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new BodyTooLarge());
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function sendXml(res: ServerResponse, status: number, body: string, id: string): void {
  res.writeHead(status, {
    'content-type': 'text/xml;charset=UTF-8',
    'content-length': Buffer.byteLength(body),
    'x-amzn-requestid': id,
    server: 'AmazonEC2',
  });
  res.end(body);
}

function sendJson(res: ServerResponse, response: ControlResponse): void {
  const body = JSON.stringify(response.body);
  res.writeHead(response.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

export type ControlHandler = (method: string, path: string, body: string) => Promise<ControlResponse>;

export function createEmulatorServer(core: EmulatorCore, control: ControlHandler): Server {
  return createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://emulator.invalid');
      let body: string;
      try {
        body = await readBody(req);
      } catch (error) {
        const id = requestId();
        const tooLarge = error instanceof BodyTooLarge;
        sendXml(res, tooLarge ? 413 : 400, errorDocument(tooLarge ? 'RequestEntityTooLarge' : 'MalformedQueryString', 'Could not read the request body.', id), id);
        return;
      }
      if (url.pathname === CONTROL_PREFIX || url.pathname.startsWith(`${CONTROL_PREFIX}/`)) {
        sendJson(res, await control(req.method ?? 'GET', url.pathname, body));
        return;
      }
      const target = req.headers['x-amz-target'];
      if (typeof target === 'string' && target.startsWith(PRICING_TARGET_PREFIX)) {
        const result = core.executeJson(target, req.headers.authorization, body);
        res.writeHead(result.status, {
          'content-type': 'application/x-amz-json-1.1',
          'content-length': Buffer.byteLength(result.body),
          'x-amzn-requestid': result.requestId,
          ...(result.errorType ? { 'x-amzn-errortype': result.errorType } : {}),
        });
        res.end(result.body);
        return;
      }
      const params = QueryParams.fromSearchParams(url.searchParams, new URLSearchParams(body));
      const result = core.execute({ authorization: req.headers.authorization, params });
      sendXml(res, result.status, result.body, result.requestId);
    })().catch((error: Error) => {
      const id = requestId();
      if (!res.headersSent) sendXml(res, 500, errorDocument('InternalError', error.message, id), id);
      else res.destroy(error);
    });
  });
}
