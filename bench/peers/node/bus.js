// The seed's Node.js message-bus service: node's http server and the
// official MongoDB driver (bench/peers/README.md).
//
//     node bus.js PORT MONGODB_URI DATABASE PARTITIONS
//
// The same store layout, query and JSON as msgbus and bench/peers/buslib.py.
'use strict';

const http = require('http');
const { MongoClient, ObjectId, Binary } = require('mongodb');

const MAX_LIMIT = 20;
const PATH = /^\/v2\/queues\/([A-Za-z0-9_.-]{1,64})\/messages$/;

// zlib's crc32, as Python's binascii.crc32
const CRC = new Int32Array(256).map((_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c;
});
function crc32(s) {
  let c = -1;
  for (const b of Buffer.from(s)) c = CRC[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

function messagesDb(database, project, queue, partitions) {
  return `${database}_messages_p${crc32(project + queue) % partitions}`;
}

function bodyJson(b) {
  if (b instanceof Binary) return Buffer.from(b.buffer).toString();
  return JSON.stringify(b);
}

function reply(res, status, body) {
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}

function bad(res, what) {
  reply(res, 400, JSON.stringify({ title: 'Invalid request', description: what }));
}

async function getPage(client, database, partitions, res, project, queue, clientId, query) {
  const secs = Math.floor(Date.now() / 1000);
  let limit = 10, marker = null, echo = false;
  const kept = [];
  for (const [k, v] of new URLSearchParams(query)) {
    if (k === 'limit') {
      if (!/^[0-9]+$/.test(v) || +v < 1 || +v > MAX_LIMIT) return bad(res, 'limit');
      limit = +v;
    } else if (k === 'marker') {
      if (!/^[0-9]+$/.test(v)) return bad(res, 'marker');
      marker = +v;
      continue;
    } else if (k === 'echo') {
      echo = v === 'true';
    }
    kept.push(`${k}=${v}`);
  }
  const filter = {
    p_q: `${project}/${queue}`,
    e: { $gt: new Date(secs * 1000) },
    tx: null,
    'c.e': { $lte: secs },
    $or: [{ d: { $lte: secs } }, { d: { $exists: false } }],
  };
  if (marker !== null) filter.k = { $gt: marker };
  if (!echo) filter.u = { $ne: clientId };
  const docs = await client.db(messagesDb(database, project, queue, partitions)).collection('messages')
    .find(filter, { sort: { k: 1 }, limit }).toArray();
  if (docs.length === 0) return reply(res, 200, '{"messages": [], "links": []}');
  const out = docs.map((d) => {
    const id = d._id.toHexString();
    const age = Math.max(0, secs - d._id.getTimestamp().getTime() / 1000);
    return `{"id": "${id}", "href": "/v2/queues/${queue}/messages/${id}", `
      + `"ttl": ${d.t}, "age": ${age}, "body": ${bodyJson(d.b)}}`;
  });
  const base = `/v2/queues/${queue}/messages?${kept.join('&')}`;
  reply(res, 200, `{"messages": [${out.join(', ')}], "links": [{"rel": "next", `
    + `"href": "${base}&marker=${docs[docs.length - 1].k}"}]}`);
}

async function postMessages(client, database, partitions, res, project, queue, clientId, body) {
  let msgs;
  try {
    msgs = JSON.parse(body).messages;
    if (!Array.isArray(msgs) || msgs.length === 0) throw new Error('messages');
  } catch (e) {
    return bad(res, String(e.message));
  }
  const now = Math.floor(Date.now() / 1000);
  const q = await client.db(`${database}_queues`).collection('queues').findOneAndUpdate(
    { p_q: `${project}/${queue}` }, { $inc: { 'c.v': msgs.length } },
    { upsert: true, returnDocument: 'after' });
  const first = q.c.v - msgs.length + 1;
  const docs = msgs.map((m, i) => {
    const ttl = m.ttl === undefined ? 3600 : m.ttl;
    return {
      _id: new ObjectId(),
      p_q: `${project}/${queue}`,
      t: ttl,
      e: new Date((now + ttl) * 1000),
      u: clientId,
      c: { id: null, e: now, c: 0 },
      d: now,
      b: new Binary(Buffer.from(JSON.stringify(m.body)), 0x80),
      k: first + i,
      tx: null,
    };
  });
  await client.db(messagesDb(database, project, queue, partitions)).collection('messages').insertMany(docs);
  reply(res, 201, `{"resources": [${docs.map(
    (d) => `"/v2/queues/${queue}/messages/${d._id.toHexString()}"`).join(', ')}]}`);
}

async function main() {
  const [port, uri, database, partitions] = process.argv.slice(2);
  const client = new MongoClient(uri, { maxPoolSize: 32 });
  await client.connect();
  http.createServer((req, res) => {
    const [path, query = ''] = req.url.split('?', 2);
    const m = PATH.exec(path);
    const project = req.headers['x-project-id'];
    const clientId = req.headers['client-id'];
    if (!m || !project || !clientId) return reply(res, 404, '{"title": "Not found"}');
    const fail = (e) => {
      if (!res.headersSent) reply(res, 500, JSON.stringify({ title: 'Store error', description: String(e) }));
    };
    if (req.method === 'GET') {
      getPage(client, database, +partitions, res, project, m[1], clientId, query).catch(fail);
    } else if (req.method === 'POST') {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => postMessages(client, database, +partitions, res, project, m[1], clientId,
        Buffer.concat(chunks).toString()).catch(fail));
    } else {
      reply(res, 405, '{"title": "Method not allowed"}');
    }
  }).listen({ port: +port, host: '127.0.0.1', backlog: 1024 });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
