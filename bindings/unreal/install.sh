#!/bin/sh
# Copy the InfpLiveLink plugin into an Unreal project, with the infp-sdk C++ client and, where
# this system has them (Debian/Ubuntu: libzmq3-dev cppzmq-dev libmsgpack-cxx-dev), the libzmq,
# cppzmq and msgpack-cxx headers and the Linux libzmq. On Windows and macOS put libzmq's headers
# and library into Plugins/InfpLiveLink/Source/ThirdParty/LibZmq yourself (see its Build.cs).
#   bindings/unreal/install.sh PATH/TO/PROJECT
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dest="$1/Plugins/InfpLiveLink"
mkdir -p "$1/Plugins"
cp -R "$here/InfpLiveLink" "$1/Plugins/"
inc="$dest/Source/ThirdParty/LibZmq/include"
mkdir -p "$inc/infp"
cp "$here/../cpp/include/infp/client.hpp" "$inc/infp/"
for h in zmq.h zmq.hpp msgpack.hpp; do
  [ -f "/usr/include/$h" ] && cp "/usr/include/$h" "$inc/"
done
[ -d /usr/include/msgpack ] && cp -R /usr/include/msgpack "$inc/"
lib=$(ls /usr/lib/*/libzmq.so.5 2>/dev/null | head -n 1 || true)
if [ -n "$lib" ]; then
  mkdir -p "$dest/Source/ThirdParty/LibZmq/lib/Linux"
  cp -L "$lib" "$dest/Source/ThirdParty/LibZmq/lib/Linux/libzmq.so"
fi
echo "InfpLiveLink copied to $dest"
