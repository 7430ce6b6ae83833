"""A screenshot of Label Studio's labelling page for one task, taken with headless Chromium (docs/requests.md).

Logs in with the user's e-mail and password, hands the session cookie to Chromium through its DevTools protocol,
opens the task and saves a PNG. Runs with the Python of Label Studio's own environment plus websocket-client
(``pip install websocket-client``), and Debian's ``chromium``:

    python benchmarks/label_studio_screenshot.py --url http://127.0.0.1:8080 --email me@example.com \\
        --password ... --page "/projects/3/data?task=5" --out docs/requests/label_studio.png
"""

from __future__ import annotations

import argparse
import base64
import http.cookiejar
import json
import re
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request


def session_cookie(url: str, email: str, password: str) -> str:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"{url}/user/login/").read().decode()
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode({"email": email, "password": password, "csrfmiddlewaretoken": csrf}).encode()
    opener.open(urllib.request.Request(f"{url}/user/login/", data=form, headers={"Referer": f"{url}/user/login/"}))
    cookies = {c.name: c.value for c in jar}
    if "sessionid" not in cookies:
        raise SystemExit("login failed: no session cookie (check the e-mail and password)")
    return cookies["sessionid"]


def main() -> int:
    import websocket  # websocket-client

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--email", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--page", required=True, help='e.g. "/projects/3/data?task=5"')
    parser.add_argument("--out", required=True)
    parser.add_argument("--size", default="1280,800")
    parser.add_argument("--wait", type=float, default=12.0, help="seconds for the page to render")
    parser.add_argument("--port", type=int, default=9223)
    args = parser.parse_args()
    cookie = session_cookie(args.url, args.email, args.password)
    profile = tempfile.mkdtemp(prefix="segal-chromium-")
    browser = subprocess.Popen(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--window-size={args.size}",
            f"--remote-debugging-port={args.port}",
            f"--user-data-dir={profile}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(50):
            try:
                targets = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{args.port}/json/list").read())
                page = next(t for t in targets if t["type"] == "page")
                break
            except (OSError, StopIteration):
                time.sleep(0.2)
        else:
            raise SystemExit("Chromium did not open its DevTools port")
        socket = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=60)
        counter = iter(range(1, 10**6))

        def send(method: str, **params):
            number = next(counter)
            socket.send(json.dumps({"id": number, "method": method, "params": params}))
            while True:
                message = json.loads(socket.recv())
                if message.get("id") == number:
                    if "error" in message:
                        raise RuntimeError(f"{method}: {message['error']}")
                    return message.get("result", {})

        width, height = (int(v) for v in args.size.split(","))
        send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
        send("Network.enable")
        send("Network.setCookie", name="sessionid", value=cookie, url=args.url)
        send("Page.enable")
        send("Page.navigate", url=args.url + args.page)
        time.sleep(args.wait)
        shot = send("Page.captureScreenshot", format="png")
        with open(args.out, "wb") as handle:
            handle.write(base64.b64decode(shot["data"]))
        print(f"saved {args.out}")
    finally:
        browser.terminate()
        browser.wait(timeout=20)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
