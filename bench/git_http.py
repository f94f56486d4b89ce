#!/usr/bin/env python3
"""A smart-HTTP Git server for the benchmark: the real `git http-backend` (CGI) behind a small
threaded HTTP/1.1 front end with basic auth, on 127.0.0.1.

It plays the same role as `tests/common/git_server.rs` (git http-backend behind a hyper server)
without needing a Rust test binary: the benchmark only owns `bench/`. The front end only
translates HTTP to CGI (environment, request body, `Status:` header); every Git protocol
decision is http-backend's. Chunked request bodies (large pushes) are de-chunked; gzip request
bodies are passed through with `HTTP_CONTENT_ENCODING`, which http-backend decodes itself.

Usage: git_http.py <repos root> <user> <password>  -> prints `ready http://127.0.0.1:<port>`
"""

import base64
import http.server
import os
import socketserver
import subprocess
import sys
import time


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    root = ""
    expected_auth = ""

    def log_message(self, *args):  # quiet: the benchmark's stdout is the report
        pass

    def _log(self, note):
        if os.environ.get("GIT_HTTP_LOG"):
            with open(os.environ["GIT_HTTP_LOG"], "a") as f:
                f.write(f"{time.time():.3f} {self.command} {self.path} "
                        f"UA={self.headers.get('User-Agent')} "
                        f"TE={self.headers.get('Transfer-Encoding')} {note}\n")

    def _body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                line = self.rfile.readline()
                if not line.strip():
                    raise ConnectionError("request body ended before its last chunk")
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self):
        try:
            body = self._body()
        except ConnectionError as e:
            self._log(str(e))
            self.close_connection = True
            return
        if self.headers.get("Authorization", "") != self.expected_auth:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="bench"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path, _, query = self.path.partition("?")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": self.root,
            "GIT_HTTP_EXPORT_ALL": "1",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": "/dev/null",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": "bot",
            "REMOTE_ADDR": "127.0.0.1",
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": "HTTP/1.1",
        }
        for name in ("Content-Encoding", "Git-Protocol"):
            if self.headers.get(name):
                env["HTTP_" + name.upper().replace("-", "_")] = self.headers[name]
        out = subprocess.run(
            ["git", "http-backend"], input=body, env=env, capture_output=True
        ).stdout
        head, _, payload = out.partition(b"\r\n\r\n")
        if not _:
            head, _, payload = out.partition(b"\n\n")
        status = 200
        headers = []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.strip().split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        self._log(f"{status} {len(body)}B in, {len(payload)}B out")

    do_GET = _handle
    do_POST = _handle


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def main():
    root, user, password = sys.argv[1:4]
    Handler.root = root
    Handler.expected_auth = "Basic " + base64.b64encode(
        f"{user}:{password}".encode()
    ).decode()
    server = Server(("127.0.0.1", 0), Handler)
    print(f"ready http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
