// The plain HTTP answer to an upgrade that is refused (a HandshakeError's status, a 503 past
// a connection limit, an application's 401): written before the socket is closed, so it
// carries its own length and `Connection: close`.
import { Buffer } from 'node:buffer';
import { parseTokenList } from './extensions-header.js';
import { asciiLower, fieldLine, hasToken } from './header-fields.js';

const REASONS: Readonly<Record<number, string>> = {
  200: 'OK',
  201: 'Created',
  202: 'Accepted',
  203: 'Non-Authoritative Information',
  205: 'Reset Content',
  206: 'Partial Content',
  300: 'Multiple Choices',
  301: 'Moved Permanently',
  302: 'Found',
  303: 'See Other',
  305: 'Use Proxy',
  307: 'Temporary Redirect',
  308: 'Permanent Redirect',
  400: 'Bad Request',
  401: 'Unauthorized',
  402: 'Payment Required',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  407: 'Proxy Authentication Required',
  408: 'Request Timeout',
  409: 'Conflict',
  410: 'Gone',
  411: 'Length Required',
  412: 'Precondition Failed',
  413: 'Content Too Large',
  414: 'URI Too Long',
  415: 'Unsupported Media Type',
  416: 'Range Not Satisfiable',
  417: 'Expectation Failed',
  421: 'Misdirected Request',
  422: 'Unprocessable Content',
  425: 'Too Early',
  426: 'Upgrade Required',
  428: 'Precondition Required',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  451: 'Unavailable For Legal Reasons',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
  505: 'HTTP Version Not Supported',
  511: 'Network Authentication Required',
};

/**
 * A complete plain-text HTTP/1.1 response refusing the upgrade, to be written as UTF-8
 * before closing. `Connection` given in `headers` (a 426's `Upgrade`) is kept with `close`
 * appended; `Content-Type` given in `headers` replaces the default.
 * @throws RangeError for a status outside 200–599 or one that forbids a body (204, 304);
 * TypeError for an invalid header or one of Content-Length and Transfer-Encoding.
 */
export function buildRejectResponse(
  status: number,
  message: string,
  headers: Readonly<Record<string, string>> = {},
): string {
  if (!Number.isInteger(status) || status < 200 || status > 599 || status === 204 || status === 304) {
    throw new RangeError(`status ${status} cannot carry a rejection message`);
  }
  let connection = 'close';
  let contentType = 'text/plain; charset=utf-8';
  let extra = '';
  for (const [name, value] of Object.entries(headers)) {
    const lower = asciiLower(name);
    if (lower === 'content-length' || lower === 'transfer-encoding') {
      throw new TypeError(`header ${name} is computed by buildRejectResponse`);
    } else if (lower === 'connection') {
      fieldLine(name, value);
      if (!hasToken(parseTokenList(value), 'close')) connection = `${value}, close`;
      else connection = value;
    } else if (lower === 'content-type') {
      fieldLine(name, value);
      contentType = value;
    } else {
      extra += fieldLine(name, value);
    }
  }
  const reason = REASONS[status] ?? '';
  return (
    `HTTP/1.1 ${status} ${reason}\r\n` +
    `Connection: ${connection}\r\n` +
    `Content-Type: ${contentType}\r\n` +
    `Content-Length: ${Buffer.byteLength(message, 'utf8')}\r\n` +
    extra +
    '\r\n' +
    message
  );
}

