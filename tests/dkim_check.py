"""DKIM for the tests, with dkimpy as the independent verifier.

  python dkim_check.py keys DIR
      writes ed25519.key (the 32-byte seed, base64, as funnel.yaml takes it),
      ed25519.pub (the DNS record's p=), rsa.pem (PKCS#1, 2048 bits, by openssl)
      and rsa.pub (p=, the SubjectPublicKeyInfo in base64).
  python dkim_check.py verify FOLDER SELECTOR DOMAIN ALGORITHM PUBFILE
      verifies every .eml in FOLDER against that public key (there is no DNS
      here: dkimpy asks a function for the record) and prints one JSON object
      per message: its file, whether it verified, and the tags of its signature.
"""

import base64
import json
import os
import subprocess
import sys

import dkim
import nacl.signing


def keys(folder):
    os.makedirs(folder, exist_ok=True)
    sk = nacl.signing.SigningKey.generate()
    with open(os.path.join(folder, "ed25519.key"), "w") as f:
        f.write(base64.b64encode(bytes(sk)).decode())
    with open(os.path.join(folder, "ed25519.pub"), "w") as f:
        f.write(base64.b64encode(bytes(sk.verify_key)).decode())
    pem = os.path.join(folder, "rsa.pem")
    subprocess.run(["openssl", "genrsa", "-traditional", "-out", pem, "2048"],
                   check=True, capture_output=True)
    der = subprocess.run(["openssl", "rsa", "-in", pem, "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    with open(os.path.join(folder, "rsa.pub"), "w") as f:
        f.write(base64.b64encode(der).decode())


def verify(folder, selector, domain, algorithm, pubfile):
    with open(pubfile) as f:
        p = f.read().strip()
    record = ("v=DKIM1; k=%s; p=%s" % (algorithm, p)).encode()
    name = ("%s._domainkey.%s." % (selector, domain)).encode()

    def dns(qname, timeout=5):
        return record if qname == name else None

    out = []
    for file in sorted(os.listdir(folder)):
        if not file.endswith(".eml"):
            continue
        with open(os.path.join(folder, file), "rb") as f:
            raw = f.read()
        ok = dkim.verify(raw, dnsfunc=dns)
        tags = {}
        sig = dkim.DKIM(raw)
        try:
            fields = [v for k, v in sig.headers if k.lower() == b"dkim-signature"]
            if fields:
                for part in fields[0].decode().replace("\r\n", "").split(";"):
                    if "=" in part:
                        k, v = part.split("=", 1)
                        tags[k.strip()] = "".join(v.split())
        except Exception as e:  # the verdict above is what counts
            tags["error"] = repr(e)
        out.append({"file": file, "verified": bool(ok), "tags": tags})
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    if sys.argv[1] == "keys":
        keys(sys.argv[2])
    else:
        verify(*sys.argv[2:7])
