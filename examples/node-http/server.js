// A tiny web app for nhdev's Node example: answers every GET with a greeting.
const http = require("http");
const os = require("os");

const GREETING = "Hello from nhdev's Node example";
const PORT = Number(process.env.PORT || 8080);

http
  .createServer((req, res) => {
    const body = `${GREETING} (pod ${os.hostname()})\n`;
    res.writeHead(200, { "Content-Type": "text/plain; charset=utf-8", "Content-Length": Buffer.byteLength(body) });
    res.end(body);
  })
  .listen(PORT, "0.0.0.0", () => console.log(`listening on :${PORT}`));
