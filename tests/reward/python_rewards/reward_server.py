# A reward server for http_reward_test: the path picks its behaviour. Prints "PORT PID" once it
# listens on 127.0.0.1 (an ephemeral port), then serves until killed.
#   /ok       {"rewards": [len(completion), ...]} (null for completions containing "skip")
#   /list     the same rewards as a bare JSON list, sent chunked
#   /slow     answers after 30 s
#   /garbage  200 with a body that is not JSON
#   /count    one reward too many
#   /flaky    HTTP 503 on every odd request, /ok's answer on the even ones
#   /missing  HTTP 404
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

hits = {"flaky": 0}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, status, body, chunked=False):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(body), 7):
                part = body[i:i + 7]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def do_POST(self):
        req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        rewards = [None if "skip" in c else float(len(c)) for c in req["completions"]]
        assert req["query"] == [p + c for p, c in zip(req["prompts"], req["completions"])]
        path = self.path.strip("/")
        if path == "flaky":
            hits["flaky"] += 1
            if hits["flaky"] % 2 == 1:
                return self.send(503, b'{"error": "warming up"}')
        if path == "slow":
            time.sleep(30)
        if path == "garbage":
            return self.send(200, b"<html>surprise</html>")
        if path == "count":
            rewards.append(0.0)
        if path == "missing":
            return self.send(404, b'{"error": "no such route"}')
        if path == "list":
            return self.send(200, json.dumps(rewards).encode(), chunked=True)
        self.send(200, json.dumps({"rewards": rewards}).encode())


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(server.server_address[1], os.getpid(), flush=True)
server.serve_forever()
