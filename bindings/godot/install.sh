#!/bin/sh
# Copy the infp addon and the shared protocol files (bindings/csharp) into a Godot 4 project.
#   bindings/godot/install.sh PATH/TO/PROJECT
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dest="$1/addons/infp"
mkdir -p "$dest/protocol"
cp "$here"/addons/infp/*.cs "$here"/addons/infp/*.gd "$dest/"
for f in InfpDecoder.cs InfpStream.cs InfpRig.cs; do cp "$here/../csharp/$f" "$dest/protocol/"; done
echo "infp addon copied to $dest"
echo "For the C# nodes, add to your .csproj: <PackageReference Include=\"NetMQ\" Version=\"4.0.1.13\" />"
