"""Reads every `.eml` in a folder with Python's own MIME parser (an independent
check of what funnel writes) and prints one JSON object per message: its headers,
its text and HTML parts, and the parser's complaints (defects).

Usage: python email_check.py FOLDER
"""

import email
import email.policy
import json
import os
import sys


def main():
    folder = sys.argv[1]
    out = []
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".eml"):
            continue
        with open(os.path.join(folder, name), "rb") as f:
            msg = email.message_from_binary_file(f, policy=email.policy.default)
        defects = [repr(d) for d in msg.defects]
        parts = {}
        for part in msg.walk():
            defects.extend(repr(d) for d in part.defects)
            if part.get_content_maintype() == "text":
                parts.setdefault(part.get_content_subtype(), part.get_content())
        headers = {}
        for k, v in msg.items():
            headers.setdefault(k.lower(), []).append(str(v))
        out.append({
            "file": name,
            "content_type": msg.get_content_type(),
            "headers": headers,
            "text": parts.get("plain"),
            "html": parts.get("html"),
            "defects": defects,
        })
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
