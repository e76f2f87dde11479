"""grpc_client.py PORT - calls grpc_server.py's methods on one channel
and prints one line per call: the method, what came back, the status."""
import sys

import grpc


def main():
    with grpc.insecure_channel("127.0.0.1:" + sys.argv[1]) as ch:
        say = ch.unary_unary("/demo.Echo/Say")
        print("Say", say(b"hello grpc", timeout=10).decode(), "OK")
        count = ch.unary_stream("/demo.Echo/Count")
        print("Count", ",".join(m.decode() for m in count(bytes([3]), timeout=10)), "OK")
        try:
            ch.unary_unary("/demo.Echo/Missing")(b"x", timeout=10)
        except grpc.RpcError as e:
            print("Missing", e.details(), e.code().name)


if __name__ == "__main__":
    main()
