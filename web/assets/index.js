// The index page: fills in the absolute URLs of this server and checks /healthz.
/* global document, fetch */
import { httpUrl, wsUrl } from './common.js';

for (const code of document.querySelectorAll('[data-ws]')) {
  code.textContent = wsUrl(code.dataset.ws);
}
for (const link of document.querySelectorAll('a[data-http]')) {
  link.textContent = httpUrl(link.dataset.http);
}

const sdk = document.getElementById('snippet-sdk');
sdk.textContent = sdk.textContent.replace("connect('/ws')", `connect('${wsUrl('/ws')}')`);
document.getElementById('snippet-cli').textContent = `hotline connect ${wsUrl('/echo')}`;

const health = document.getElementById('health');
fetch('/healthz', { cache: 'no-store' }).then(
  async (response) => {
    const body = (await response.text()).trim();
    health.textContent = response.ok ? `healthy (/healthz: ${response.status} ${body})` : `unhealthy (/healthz: ${response.status} ${body})`;
  },
  () => {
    health.textContent = 'unreachable';
  },
);
