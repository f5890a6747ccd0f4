"""AWS Lambda's dated price table and CPU-share rule: the one home of these figures for benchmarks and the simulator.

AWS Lambda on-demand prices, us-east-1, first usage tier (the first 6 billion GB-s per month for x86_64, 7.5 billion
for arm64), free tier ignored, 1 ms billing granularity, default 512 MB ephemeral storage (free).
Source: the AWS Lambda pricing page; these figures have been unchanged since arm64 (Graviton2) launched in
September 2021 and were last confirmed by the author in 2025-06. Not re-checked on this machine (no network
access to aws.amazon.com from here): check https://aws.amazon.com/lambda/pricing/ before quoting money.
"""

from __future__ import annotations

from dataclasses import dataclass

PRICE_TABLE_DATE = "2025-06"
PRICE_TABLE_SOURCE = "aws.amazon.com/lambda/pricing, us-east-1, first tier, free tier ignored"
LAMBDA_PRICING_URL = "https://aws.amazon.com/lambda/pricing/"


@dataclass(frozen=True, slots=True)
class ArchPrice:
    """Price of one architecture: USD per GB-second of duration and per million requests."""

    arch: str
    usd_per_gb_s: float
    usd_per_million_requests: float


PRICES: dict[str, ArchPrice] = {
    "arm64": ArchPrice("arm64", 0.0000133334, 0.20),
    "x86_64": ArchPrice("x86_64", 0.0000166667, 0.20),
}

# Lambda allocates CPU in proportion to configured memory: one full vCPU at 1769 MB (AWS documentation), up to 6 vCPUs
# at 10240 MB.
FULL_VCPU_MB = 1769
