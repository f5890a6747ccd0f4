#!/bin/sh
# Container entry point: create the state folders under $HARNESS_HOME, then run LocalStack's core in the foreground.
set -eu
mkdir -p "$HARNESS_HOME/fs" "$HARNESS_HOME/tmp" "$HARNESS_HOME/home" "$HARNESS_HOME/runtimes"
exec /opt/emulator/bin/python -m localstack.runtime.main "$@"
