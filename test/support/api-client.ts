// Calls the HTTP API of a hotline server as a backend would: POST /api/METHOD with the key,
// JSON in and out. Tests read the status and the parsed body as the caller sees them.
import { request } from 'node:http';

export interface ApiAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** The parsed JSON body (null when it was not JSON). */
  body: { result?: unknown; error?: { code: string; message: string } } | null;
  text: string;
}

export interface ApiCallOptions {
  key?: string | null;
  method?: string;
  contentType?: string | null;
  /** Sent as is (a string) instead of JSON. */
  raw?: string;
  /** Any other header. */
  headers?: Record<string, string>;
}

/** POST /api/`name` on `base` (http://127.0.0.1:PORT) with `body` as JSON. */
export function callApi(base: string, name: string, body: unknown, options: ApiCallOptions = {}): Promise<ApiAnswer> {
  const payload = options.raw ?? (body === undefined ? '' : JSON.stringify(body));
  const headers: Record<string, string> = { ...options.headers };
  if (options.key !== null && options.key !== undefined) headers.authorization = `apikey ${options.key}`;
  if (options.contentType !== null) headers['content-type'] = options.contentType ?? 'application/json';
  if (payload.length > 0) headers['content-length'] = String(Buffer.byteLength(payload));
  return new Promise((resolve, reject) => {
    const req = request(`${base}/api/${name}`, { method: options.method ?? 'POST', headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: ApiAnswer['body'];
        try {
          parsed = JSON.parse(text) as ApiAnswer['body'];
        } catch {
          parsed = null;
        }
        resolve({ status: res.statusCode!, headers: res.headers, body: parsed, text });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(payload);
  });
}

/** The result of a call that must succeed (200), or a clear failure naming what came instead. */
export async function apiResult<T = Record<string, unknown>>(base: string, name: string, body: unknown, key: string): Promise<T> {
  const answer = await callApi(base, name, body, { key });
  if (answer.status !== 200) throw new Error(`/api/${name} answered ${answer.status}: ${answer.text}`);
  return answer.body!.result as T;
}
