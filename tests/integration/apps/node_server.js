// node_server.js - a Node.js `http` server for the integration tests.
//
//     node node_server.js PORT
//
//   GET  /hello     "hello from node\n" with Content-Length
//   GET  /chunked   ?n=N: N lines "chunk i" written one res.write each
//                   (no Content-Length, so Node sends it chunked)
//   POST /json      the JSON body parsed and echoed back as {"echo": body},
//                   with Content-Length
//
// Keep-alive is Node's default. Prints "listening" once bound.
'use strict';
const http = require('http');

const port = Number(process.argv[2]);

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    if (req.method === 'GET' && url.pathname === '/hello') {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 16 });
      res.end('hello from node\n');
    } else if (req.method === 'GET' && url.pathname === '/chunked') {
      const n = Number(url.searchParams.get('n') || 3);
      res.writeHead(200, { 'content-type': 'text/plain' });
      let i = 0;
      const next = () => {
        if (i === n) return res.end();
        res.write(`chunk ${i++}\n`);
        setTimeout(next, 5);      // separate writes, separate chunks
      };
      next();
    } else if (req.method === 'POST' && url.pathname === '/json') {
      let parsed;
      try {
        parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch (e) {
        res.writeHead(400, { 'content-type': 'text/plain', 'content-length': 9 });
        return res.end('bad json\n');
      }
      const out = Buffer.from(JSON.stringify({ echo: parsed }));
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': out.length });
      res.end(out);
    } else {
      res.writeHead(404, { 'content-type': 'text/plain', 'content-length': 10 });
      res.end('not found\n');
    }
  });
});

server.listen(port, '127.0.0.1', () => console.log('listening'));
process.on('SIGTERM', () => process.exit(0));   // a normal exit: destructors run
