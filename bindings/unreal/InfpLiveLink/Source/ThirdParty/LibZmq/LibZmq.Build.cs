// libzmq and the header-only infp-sdk C++ client (with cppzmq and msgpack-cxx), as an External
// module: nothing is compiled here, the plugin only gets include paths and libraries.
//
// Layout (install.sh fills it from the repository and your system; see docs/integrations/unreal.md):
//   include/   zmq.h, zmq.hpp (cppzmq), msgpack.hpp + msgpack/ (msgpack-cxx), infp/client.hpp
//   lib/Win64/libzmq.lib + libzmq.dll    lib/Mac/libzmq.dylib    lib/Linux/libzmq.so
using System.IO;
using UnrealBuildTool;

public class LibZmq : ModuleRules
{
	public LibZmq(ReadOnlyTargetRules Target) : base(Target)
	{
		Type = ModuleType.External;
		PublicSystemIncludePaths.Add(Path.Combine(ModuleDirectory, "include"));
		PublicDefinitions.Add("MSGPACK_NO_BOOST=1");
		PublicDefinitions.Add("ZMQ_STATIC=0");

		string Lib = Path.Combine(ModuleDirectory, "lib", Target.Platform.ToString());
		if (Target.Platform == UnrealTargetPlatform.Win64)
		{
			PublicAdditionalLibraries.Add(Path.Combine(Lib, "libzmq.lib"));
			PublicDelayLoadDLLs.Add("libzmq.dll");
			RuntimeDependencies.Add("$(BinaryOutputDir)/libzmq.dll", Path.Combine(Lib, "libzmq.dll"));
		}
		else if (Target.Platform == UnrealTargetPlatform.Mac)
		{
			PublicAdditionalLibraries.Add(Path.Combine(Lib, "libzmq.dylib"));
			RuntimeDependencies.Add("$(BinaryOutputDir)/libzmq.dylib", Path.Combine(Lib, "libzmq.dylib"));
		}
		else if (Target.Platform == UnrealTargetPlatform.Linux)
		{
			PublicAdditionalLibraries.Add(Path.Combine(Lib, "libzmq.so"));
			RuntimeDependencies.Add("$(BinaryOutputDir)/libzmq.so", Path.Combine(Lib, "libzmq.so"));
		}
	}
}
