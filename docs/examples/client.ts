// The SDK in Node against any of the servers above: subscribe, publish, receive, leave.
// Run it with the server's URL: node client.js ws://127.0.0.1:3000/ws
import { WebSocket } from 'hotline';
import { connect } from 'hotline/client';

const client = connect(process.argv[2] ?? 'ws://127.0.0.1:3000/ws', { WebSocket });
client.on('error', (error) => console.error(`cannot connect: ${error.message}`));

const room = client.channel<{ text: string }>('room:1');
// subscribe() is sent before publish(): the server handles a connection's requests in order.
const received = new Promise<{ text: string }>((resolve) => void room.subscribe(resolve));
await room.publish({ text: 'hello through hotline' });
console.log(`received: ${(await received).text}`);
client.close();
