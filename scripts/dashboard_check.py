#!/usr/bin/env python3
"""Opens the live dashboard in headless Chromium through the DevTools protocol (standard library
only: a minimal WebSocket client), waits for live data, saves a screenshot and checks that the page
shows a health score, a non-empty nodes table, a live connection, and no JavaScript errors.

usage: dashboard_check.py URL SCREENSHOT [--timeout S]
exit 0 when every check passes; 1 with the failed checks printed otherwise; 2 when Chromium is missing.
"""
import base64, json, os, shutil, socket, struct, subprocess, sys, tempfile, time, urllib.request


class WebSocket:
    def __init__(self, url):
        assert url.startswith("ws://")
        hostport, path = url[5:].split("/", 1)
        host, port = hostport.split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        response = b""
        while b"\r\n\r\n" not in response:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise RuntimeError("DevTools closed the connection during the handshake")
            response += chunk
        if b" 101 " not in response.split(b"\r\n", 1)[0]:
            raise RuntimeError("DevTools refused the WebSocket: " + response.split(b"\r\n", 1)[0].decode())
        self.buffer = response.split(b"\r\n\r\n", 1)[1]

    def send(self, text):
        data = text.encode()
        header = bytes([0x81])
        mask = os.urandom(4)
        if len(data) < 126:
            header += bytes([0x80 | len(data)])
        elif len(data) < 65536:
            header += bytes([0x80 | 126]) + struct.pack(">H", len(data))
        else:
            header += bytes([0x80 | 127]) + struct.pack(">Q", len(data))
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def _read(self, n):
        while len(self.buffer) < n:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise RuntimeError("DevTools connection closed")
            self.buffer += chunk
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def receive(self):
        message = b""
        while True:
            b1, b2 = self._read(2)
            length = b2 & 0x7F
            if length == 126:
                length = struct.unpack(">H", self._read(2))[0]
            elif length == 127:
                length = struct.unpack(">Q", self._read(8))[0]
            payload = self._read(length)
            opcode = b1 & 0x0F
            if opcode == 0x8:
                raise RuntimeError("DevTools closed the WebSocket")
            if opcode in (0x9, 0xA):
                continue
            message += payload
            if b1 & 0x80:
                return message.decode()


class DevTools:
    def __init__(self, ws):
        self.ws, self.next_id, self.events = ws, 0, []

    def call(self, method, **params):
        self.next_id += 1
        my_id = self.next_id
        self.ws.send(json.dumps({"id": my_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.receive())
            if message.get("id") == my_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def evaluate(self, expression):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    url, screenshot = sys.argv[1], sys.argv[2]
    timeout = float(sys.argv[sys.argv.index("--timeout") + 1]) if "--timeout" in sys.argv else 30
    # --expect-text TEXT (repeatable): the page must show it once live.
    expected = [sys.argv[i + 1] for i, arg in enumerate(sys.argv[:-1]) if arg == "--expect-text"]
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if not browser:
        print("SKIP: Chromium is not installed")
        return 2
    profile = tempfile.mkdtemp(prefix="bitten-chromium-")
    port_socket = socket.socket()
    port_socket.bind(("127.0.0.1", 0))
    port = port_socket.getsockname()[1]
    port_socket.close()
    process = subprocess.Popen([browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                                "--no-first-run", "--hide-scrollbars", f"--user-data-dir={profile}",
                                f"--remote-debugging-port={port}", "--window-size=1400,1900", "about:blank"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    failures = []
    try:
        target = None
        deadline = time.time() + 30
        while time.time() < deadline and target is None:
            try:
                targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2))
                target = next((t for t in targets if t.get("type") == "page"), None)
            except OSError:
                time.sleep(0.3)
        if target is None:
            print("FAIL: Chromium's DevTools endpoint did not come up")
            return 1
        tools = DevTools(WebSocket(target["webSocketDebuggerUrl"]))
        tools.call("Runtime.enable")
        tools.call("Log.enable")
        tools.call("Page.enable")
        tools.call("Emulation.setDeviceMetricsOverride", width=1400, height=1900, deviceScaleFactor=1, mobile=False)
        tools.call("Page.navigate", url=url)
        state = {}
        deadline = time.time() + timeout
        while time.time() < deadline:
            state = tools.evaluate("""(() => ({
                score: document.getElementById('health-score')?.getAttribute('data-score') || '',
                nodes: document.querySelectorAll('#nodes-table tbody tr:not(:has(td.empty))').length,
                conn: document.getElementById('conn')?.textContent || '',
                services: document.querySelectorAll('#services-table tbody tr').length,
            }))()""") or {}
            if state.get("score") and state.get("nodes", 0) > 0 and state.get("conn") == "live":
                break
            time.sleep(0.5)
        # Not required, but a screenshot worth looking at: give the demo a few seconds to post its first
        # signals and open positions (and the charts a few points).
        extra = time.time() + 10
        while time.time() < extra:
            rows = tools.evaluate("document.querySelectorAll('#signals-table tbody tr:not(:has(td.empty))').length") or 0
            if rows > 0:
                break
            time.sleep(0.5)
        time.sleep(2)
        shot = tools.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        os.makedirs(os.path.dirname(os.path.abspath(screenshot)), exist_ok=True)
        with open(screenshot, "wb") as f:
            f.write(base64.b64decode(shot["data"]))
        # Drain what arrived meanwhile, then look for errors.
        tools.evaluate("1")
        errors = []
        for event in tools.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                errors.append("exception: " + (details.get("exception", {}).get("description") or details.get("text", "")))
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                errors.append("console.error: " + " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", [])))
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                entry = params["entry"]
                # The browser asks for /favicon.ico on its own; a 404 there is not the page's error.
                if "favicon.ico" not in entry.get("url", ""):
                    errors.append(f"log: {entry.get('text')} {entry.get('url', '')}")
        score = state.get("score", "")
        print(f"dashboard: health score {score or '—'}, {state.get('nodes', 0)} node rows, {state.get('services', 0)} service rows, "
              f"connection '{state.get('conn', '')}', {len(errors)} JavaScript errors; screenshot {screenshot}")
        if not score.isdigit() or not 0 <= int(score) <= 100:
            failures.append(f"no health score shown (got '{score}')")
        if state.get("nodes", 0) == 0:
            failures.append("the nodes table is empty")
        if state.get("conn") != "live":
            failures.append(f"not connected to the live stream (header says '{state.get('conn')}')")
        text = tools.evaluate("document.body.innerText") or ""
        for wanted in expected:
            if wanted not in text:
                failures.append(f"the page does not show '{wanted}'")
        failures += errors
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(profile, ignore_errors=True)
    for failure in failures:
        print("FAIL:", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
