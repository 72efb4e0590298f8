using UnrealBuildTool;

public class InfpLiveLink : ModuleRules
{
	public InfpLiveLink(ReadOnlyTargetRules Target) : base(Target)
	{
		PCHUsage = PCHUsageMode.UseExplicitOrSharedPCHs;
		// msgpack-cxx reports parse errors with C++ exceptions, which the infp client catches.
		bEnableExceptions = true;
		PublicDependencyModuleNames.AddRange(new[] { "Core", "CoreUObject", "Engine", "LiveLinkInterface" });
		PrivateDependencyModuleNames.AddRange(new[] { "LibZmq" });
	}
}
