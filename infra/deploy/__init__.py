"""Deploy the stack definition with boto3 to any endpoint (emulator or AWS), one role per module.

target (where: endpoint, region, credentials, clients), apply (lint, then create or update in place), destroy,
describe, outputs (the typed StackOutputs and its file), report (what a deploy or destroy did), code (which zip),
calls (AWS calls -> InfraError), diff (deployed vs wanted). Import from the module that owns a name.
"""
