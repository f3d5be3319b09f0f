// A Gala webhook receiver in Node.js.
//
// Every delivery is verified with the Standard Webhooks reference library before it is
// trusted: the signature (HMAC-SHA256 over "{webhook-id}.{webhook-timestamp}.{body}"
// with the endpoint's whsec_ secret; during a rotation either secret's signature
// passes), and the timestamp (within five minutes). The body is the event as a
// CloudEvent in structured JSON. A receiver must answer 2xx quickly and de-duplicate by
// `webhook-id`: Gala delivers at least once, and retries until it gets a 2xx.
//
//   WEBHOOK_SECRET=whsec_... PORT=8080 node receiver.mjs
//
// One JSON line per request goes to stdout: {"webhookId", "verified", "type", ...}.
import http from "node:http";
import { Webhook } from "standardwebhooks";

const secret = process.env.WEBHOOK_SECRET;
if (!secret) {
  console.error("WEBHOOK_SECRET (the endpoint's whsec_... secret) is required");
  process.exit(2);
}
const port = Number(process.env.PORT || 8080);
const host = process.env.HOST || "127.0.0.1";
const webhook = new Webhook(secret);
const seen = new Set();
const MAX_BYTES = 1024 * 1024;

function report(fields) {
  process.stdout.write(JSON.stringify(fields) + "\n");
}

const server = http.createServer((request, response) => {
  if (request.method !== "POST") {
    response.writeHead(405).end();
    return;
  }
  const chunks = [];
  let size = 0;
  request.on("data", (chunk) => {
    size += chunk.length;
    if (size > MAX_BYTES) {
      response.writeHead(413).end();
      request.destroy();
      return;
    }
    chunks.push(chunk);
  });
  request.on("end", () => {
    const body = Buffer.concat(chunks).toString("utf8");
    const webhookId = request.headers["webhook-id"] || null;
    let event;
    try {
      event = webhook.verify(body, request.headers);
    } catch (error) {
      report({ webhookId, verified: false, error: String(error.message || error) });
      response.writeHead(400, { "content-type": "text/plain" }).end("signature not verified");
      return;
    }
    const duplicate = seen.has(webhookId);
    seen.add(webhookId);
    report({
      webhookId,
      verified: true,
      duplicate,
      type: event.type,
      subject: event.subject,
      venue: event.venueid,
      contentType: request.headers["content-type"],
    });
    response.writeHead(204).end();
  });
});

server.listen(port, host, () => report({ listening: `http://${host}:${port}` }));
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
