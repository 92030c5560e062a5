/**
 * The OpenAPI 3.1 document of the HTTP API, written from the same definitions the handler
 * validates and runs (methods.ts) and the same error table (errors.ts).
 */
import { API_ERROR_STATUS, type ApiErrorCode } from './errors.js';
import { API_METHODS, type JsonSchema } from './methods.js';

/** Codes every method can answer, whatever it does. */
const COMMON_ERRORS: ApiErrorCode[] = ['bad_request', 'unauthorized', 'method_not_allowed', 'request_timeout', 'too_large', 'unsupported_media_type', 'internal'];

const ERROR_EXAMPLES: Record<ApiErrorCode, string> = {
  bad_request: 'channel: is required',
  unauthorized: 'the API key is required: Authorization: apikey KEY',
  forbidden: 'not allowed',
  not_found: 'there is no API method "publsh"',
  method_not_allowed: 'POST to /api/publish',
  request_timeout: 'the body did not arrive within 10000 ms',
  too_large: 'the body is larger than 262144 bytes',
  unsupported_media_type: 'the body must be JSON: Content-Type: application/json',
  rate_limited: 'too many requests',
  too_many_pending: 'this node already has 10000 commands waiting for answers',
  timeout: 'no answer from every node within 5000 ms',
  unavailable: 'cannot reach Redis at redis://127.0.0.1:6379 within 5000 ms',
  internal: 'the server failed; the request may be retried',
};

function errorResponses(codes: ApiErrorCode[]): Record<string, unknown> {
  const byStatus = new Map<number, ApiErrorCode[]>();
  for (const code of new Set([...COMMON_ERRORS, ...codes])) {
    const status = API_ERROR_STATUS[code];
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  const responses: Record<string, unknown> = {};
  for (const [status, sharing] of [...byStatus].sort((a, b) => a[0] - b[0])) {
    responses[String(status)] = {
      description: sharing.map((code) => `\`${code}\``).join(', '),
      content: {
        'application/json': {
          schema: { $ref: '#/components/schemas/Error' },
          examples: Object.fromEntries(sharing.map((code) => [code, { value: { error: { code, message: ERROR_EXAMPLES[code] } } }])),
        },
      },
    };
  }
  return responses;
}

export function openApiDocument(): Record<string, unknown> {
  const paths: Record<string, unknown> = {};
  for (const [name, method] of Object.entries(API_METHODS)) {
    const result: JsonSchema = { type: 'object', properties: { result: method.result }, required: ['result'] };
    paths[`/api/${name}`] = {
      post: {
        operationId: name,
        summary: method.summary,
        description: method.description,
        requestBody: {
          required: name !== 'info' && name !== 'channels',
          content: { 'application/json': { schema: method.request, example: method.example.request } },
        },
        responses: {
          200: { description: 'Done', content: { 'application/json': { schema: result, example: { result: method.example.result } } } },
          ...errorResponses(method.errors),
        },
      },
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'hotline server API',
      version: '1',
      description:
        'How a backend in any language reaches `hotline serve`: publish, broadcast, history, presence, channels, disconnect, unsubscribe, info. JSON in and out; every call is a POST with the API key.',
    },
    servers: [{ url: '/' }],
    security: [{ apikey: [] }],
    paths,
    components: {
      securitySchemes: {
        apikey: { type: 'apiKey', in: 'header', name: 'Authorization', description: 'The value is `apikey KEY`, KEY being the server\'s api.key.' },
      },
      schemas: {
        ErrorDetail: {
          type: 'object',
          properties: { code: { type: 'string', enum: Object.keys(API_ERROR_STATUS) }, message: { type: 'string' } },
          required: ['code', 'message'],
        },
        Error: { type: 'object', properties: { error: { $ref: '#/components/schemas/ErrorDetail' } }, required: ['error'] },
      },
    },
  };
}
