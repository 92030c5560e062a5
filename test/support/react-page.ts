// The page of test/react-browser.test.ts, bundled with esbuild: a React app on the SDK and
// hotline/react, in Chromium, against `hotline serve`. It records every frame the client
// sends (to count subs and unsubs) and exposes mount/unmount to the test as window.app.
import { createElement as h, StrictMode, useState, type ReactNode } from 'react';
import { createRoot, type Root } from 'react-dom/client';
import { connect, type WebSocketConstructorLike } from '../../src/client/index.js';
import { HotlineProvider, useChannelEvent, useConnectionState, useMessages, usePresence, usePublish } from '../../src/react/index.js';

/** The page's globals, typed here: the test project's lib has no DOM. */
interface PageElement {
  textContent: string | null;
}
const page = globalThis as unknown as {
  location: { host: string };
  document: { createElement(tag: string): PageElement; body: { replaceChildren(...nodes: PageElement[]): void } };
  app?: unknown;
};

const sent: string[] = [];
/** The platform WebSocket, recording what the SDK sends. */
class Recording extends WebSocket {
  override send(data: string): void {
    sent.push(data);
    super.send(data);
  }
}

const ROOM = 'react:room';
const client = connect(`ws://${page.location.host}/ws`, { WebSocket: Recording as unknown as WebSocketConstructorLike, reconnect: { initial: 100, max: 300 } });

function Status(): ReactNode {
  return h('span', { id: 'state' }, useConnectionState());
}

function Feed(): ReactNode {
  const messages = useMessages<{ text: string }>(ROOM);
  return h('ul', { id: 'feed' }, ...messages.map((m, i) => h('li', { key: i }, m.text)));
}

function Who(): ReactNode {
  const { members, truncated, joinLeave, enter } = usePresence(ROOM);
  const [entered, setEntered] = useState(false);
  if (!entered) {
    setEntered(true);
    void enter({ color: 'teal' });
  }
  return h(
    'span',
    null,
    h('span', { id: 'members' }, members.map((m) => String((m['state'] as { color?: string } | undefined)?.color ?? '-')).join(',')),
    h('span', { id: 'presence-flags' }, `truncated:${truncated} joinLeave:${joinLeave}`),
  );
}

function Ticks(): ReactNode {
  const [ticks, setTicks] = useState(0);
  useChannelEvent(ROOM, 'ephemeral', () => setTicks((n) => n + 1));
  return h('span', { id: 'ticks' }, String(ticks));
}

function Send(): ReactNode {
  const publish = usePublish<{ text: string }>(ROOM);
  return h('button', { id: 'send', onClick: () => void publish({ text: 'from react' }) }, 'send');
}

function App(): ReactNode {
  return h(HotlineProvider, { client }, h(Status), h(Feed), h(Who), h(Ticks), h(Send));
}

let root: Root | null = null;
const app = {
  sent,
  /** Frames of `op` for the room sent so far. */
  count(op: string): number {
    return sent.filter((text) => {
      const message = JSON.parse(text) as { op?: string; ch?: string };
      return message.op === op && message.ch === ROOM;
    }).length;
  },
  channelState(): string {
    return client.channel(ROOM).state;
  },
  mount(strict: boolean): void {
    const container = page.document.createElement('div');
    page.document.body.replaceChildren(container);
    root = createRoot(container as unknown as Parameters<typeof createRoot>[0]);
    root.render(strict ? h(StrictMode, null, h(App)) : h(App));
  },
  unmount(): void {
    root?.unmount();
    root = null;
  },
};
page.app = app;
