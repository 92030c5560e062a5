// Small helpers shared by hotline's pages (plain ES module, no build step).
/* global location, document */

/** The ws:// (or wss:// on https) URL of a path on the server that served this page. */
export function wsUrl(path) {
  return `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}${path}`;
}

/** The http(s):// URL of a path on this server. */
export function httpUrl(path) {
  return `${location.protocol}//${location.host}${path}`;
}

const pad = (n, width = 2) => String(n).padStart(width, '0');

/** Local time of day with milliseconds, as logs show it: 14:03:27.512. */
export function clockTime(date = new Date()) {
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`;
}

/** Local time of day to the second: 14:03:27. */
export function shortTime(date = new Date()) {
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

/** 1536 → "1.5 KiB". */
export function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = -1;
  do {
    value /= 1024;
    unit++;
  } while (value >= 1024 && unit < units.length - 1);
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** 75000 → "1 min 15 s". */
export function formatAge(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  const h = Math.floor(m / 60);
  return `${h} h ${m % 60} min`;
}

/**
 * Creates an element: el('li', { class: 'x', 'data-id': 3 }, 'text', child). Text is
 * always set as text, never parsed as HTML.
 */
export function el(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    element.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    element.append(typeof child === 'string' || typeof child === 'number' ? String(child) : child);
  }
  return element;
}

/** Whether a scrollable element is (nearly) scrolled to its end, so new lines should follow. */
export function atBottom(element) {
  return element.scrollHeight - element.scrollTop - element.clientHeight < 24;
}
