"""A tiny web app for nhdev's demo: answers every GET with a greeting read from GREETING."""

import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GREETING = "Hello from nhdev's Python example"
PORT = int(os.environ.get("PORT", "8080"))


class Greeter(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"{GREETING} (pod {os.environ.get('HOSTNAME', '?')})\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        print(f"{self.address_string()} {format % args}", flush=True)


if __name__ == "__main__":
    print(f"listening on :{PORT}", flush=True)
    ThreadingHTTPServer(("0.0.0.0", PORT), Greeter).serve_forever()
