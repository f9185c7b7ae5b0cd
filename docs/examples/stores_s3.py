# ruff: noqa: E402
"""docs/stores.md, "URLs and filesystems": S3, a chained cache and squirrel-core's caching options.

Not executed when the docs are built (it needs an S3 server); tests/test_docs_examples.py runs this file. The part
between the ``docs: begin`` and ``docs: end`` markers is the block shown on the page; the part before it starts a
local S3 server (moto) with the bucket ``my-bucket`` and puts its address in ``S3_ENDPOINT_URL``.
"""

import logging
import os

import s3fs
from moto.server import ThreadedMotoServer

logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
host, port = server.get_host_and_port()
os.environ["S3_ENDPOINT_URL"] = f"http://{host}:{port}"
s3fs.S3FileSystem(key="my-key", secret="my-secret", client_kwargs={"endpoint_url": f"http://{host}:{port}"}).mkdir(
    "my-bucket"
)

# docs: begin
import os

from squirrel_graph.driver import MessagepackDriver

endpoint = os.environ.get("S3_ENDPOINT_URL", "http://127.0.0.1:9000")  # your S3-compatible server
options = {"key": "my-key", "secret": "my-secret", "client_kwargs": {"endpoint_url": endpoint}}
driver = MessagepackDriver("s3://my-bucket/store", storage_options=options)
driver.store.set([{"i": 0}, {"i": 1}], key="shard-0")
print(driver.get_iter().collect())

cached = MessagepackDriver(
    "simplecache::s3://my-bucket/store",
    storage_options={"s3": options, "simplecache": {"cache_storage": "shard-cache"}},
)
print(cached.get_iter().collect())

core_style = MessagepackDriver(
    "s3://my-bucket/store",
    storage_options={
        "protocol": "simplecache",
        "target_protocol": "s3",
        "target_options": options,
        "cache_storage": "shard-cache",
    },
)
print(core_style.get_iter().collect())
# docs: end

server.stop()
