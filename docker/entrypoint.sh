#!/bin/sh
# Container entry point: create the state folders under $HARNESS_HOME, then run LocalStack's core in the foreground.
set -eu
mkdir -p "$HARNESS_HOME/fs" "$HARNESS_HOME/tmp" "$HARNESS_HOME/home" "$HARNESS_HOME/runtimes"
# the node binaries the image carries (docker/node: /opt/node/<major>/bin/node) for nodejs<major>.x functions
for node in /opt/node/*/bin/node; do
  [ -x "$node" ] || continue
  major=$(basename "$(dirname "$(dirname "$node")")")
  export "HARNESS_LAMBDA_NODE$major=$node"
done
# HARNESS_LEAN (default on): the LocalStack settings of the plugin's lean request path, from the plugin's own list
# (local_executor/lean.py ENVIRONMENT; a variable already set wins), as harness/emulator.py does in embedded mode
eval "$(/opt/emulator/bin/python -c 'import shlex
from local_executor import lean
print("".join(f"export {k}={shlex.quote(v)}\n" for k, v in lean.environment().items()))')"
exec /opt/emulator/bin/python -m localstack.runtime.main "$@"
