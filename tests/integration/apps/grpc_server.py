"""grpc_server.py PORT - a gRPC server (python3-grpcio) with no generated
code: methods of service demo.Echo take and return raw bytes.

  Say         unary: answers the request bytes back
  Count       server streaming: answers N messages "0".."N-1", N = the
              request's one byte
  Missing     unary: always fails with NOT_FOUND "no such thing"
"""
import sys
from concurrent import futures

import grpc


def say(request, context):
    return request


def count(request, context):
    for i in range(request[0] if request else 0):
        yield str(i).encode()


def missing(request, context):
    context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")


def main():
    handlers = {
        "Say": grpc.unary_unary_rpc_method_handler(say),
        "Count": grpc.unary_stream_rpc_method_handler(count),
        "Missing": grpc.unary_unary_rpc_method_handler(missing),
    }
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("demo.Echo", handlers),))
    server.add_insecure_port("127.0.0.1:" + sys.argv[1])
    server.start()
    print("serving", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
