"""The Open Inference Protocol (KServe v2) over gRPC: grpcio's asyncio server over service.v2."""
