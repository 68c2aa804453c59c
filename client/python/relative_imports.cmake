# Rewrites protoc's top-level `import foo_pb2 as bar` into package-relative
# imports so the stubs live inside npuk._proto. Run with -DDIR=<stub dir>.
file(GLOB stubs ${DIR}/*_pb2.py ${DIR}/*_pb2_grpc.py)
foreach(f ${stubs})
  file(READ ${f} text)
  string(REGEX REPLACE "(^|\n)import ([A-Za-z0-9_]+_pb2) as"
         "\\1from . import \\2 as" text "${text}")
  file(WRITE ${f} "${text}")
endforeach()
file(WRITE ${DIR}/__init__.py "# Generated gRPC stubs; see client/python.\n")
