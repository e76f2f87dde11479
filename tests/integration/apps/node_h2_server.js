// node_h2_server.js PORT - node's http2 module serving h2c (prior
// knowledge): GET /hello answers "hello from node h2"; POST /echo answers
// the request body back.
'use strict';
const http2 = require('http2');

const server = http2.createServer();
server.on('stream', (stream, headers) => {
    const path = headers[':path'];
    if (headers[':method'] === 'POST' && path === '/echo') {
        const parts = [];
        stream.on('data', (d) => parts.push(d));
        stream.on('end', () => {
            stream.respond({ ':status': 200, 'content-type': 'application/octet-stream' });
            stream.end(Buffer.concat(parts));
        });
        return;
    }
    stream.respond({ ':status': path === '/hello' ? 200 : 404, 'content-type': 'text/plain' });
    stream.end(path === '/hello' ? 'hello from node h2' : 'not here');
});
server.listen(Number(process.argv[2]), '127.0.0.1', () => console.log('listening'));
