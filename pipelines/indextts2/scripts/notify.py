#!/usr/bin/env python3
"""Tell people that the health check did not pass: a JSON POST to a webhook.

Reads NOTIFY_WEBHOOK_URL, NOTIFY_STATUS and NOTIFY_TEXT from the environment
(the pipeline's task params). The body carries "text" (what Slack, Mattermost
and most chat webhooks display) and "status"; any 2xx answer is success.
An empty URL is not an error: the message is logged and nobody is told.
The URL is a secret (it often embeds a token) and is never printed.

Exit status: 0 delivered or no webhook set, 1 the webhook refused or failed.
"""
import json
import os
import sys
import urllib.error
import urllib.request


def notify(url: str, status: str, text: str, timeout: float = 20.0) -> tuple[bool, str]:
    body = json.dumps({"text": text, "status": status}).encode()
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return True, f"HTTP {response.status}"
    except urllib.error.HTTPError as error:
        return False, f"HTTP {error.code}"
    except (urllib.error.URLError, OSError) as error:
        return False, f"{type(error).__name__}: {getattr(error, 'reason', error)}"


def main() -> int:
    url = os.environ.get("NOTIFY_WEBHOOK_URL", "").strip()
    status = os.environ.get("NOTIFY_STATUS", "failed")
    text = os.environ.get("NOTIFY_TEXT", "").strip() or f"IndexTTS2 health check: {status}"
    print(f"notify: {text}")
    if not url:
        print("notify: no webhook set (notify_webhook_url is empty); nobody was told")
        return 0
    delivered, detail = notify(url, status, text)
    print(f"notify: webhook {'answered' if delivered else 'FAILED:'} {detail}",
          file=sys.stdout if delivered else sys.stderr)
    return 0 if delivered else 1


if __name__ == "__main__":
    sys.exit(main())
