// A Live Link source fed by the infp-sdk C++ client (bindings/cpp/include/infp/client.hpp).
//
// A thread (FRunnable) receives hello and motion with infp::Client and pushes one subject of the
// Basic role: the 52 ARKit curves named as Live Link Face names them (EyeBlinkLeft ... TongueOut),
// then HeadYaw, HeadPitch, HeadRoll, LeftEyeYaw, LeftEyePitch, LeftEyeRoll, RightEyeYaw,
// RightEyePitch, RightEyeRoll as angle / pi, the values the Live Link Face app sends (and
// `infp-sdk live --livelink` sends), so a MetaHuman's ARKit mapping works unchanged.
#pragma once

#include "CoreMinimal.h"
#include "HAL/Runnable.h"
#include "HAL/ThreadSafeBool.h"
#include "ILiveLinkSource.h"
#include "Kismet/BlueprintFunctionLibrary.h"
#include "LiveLinkSourceFactory.h"
#include <atomic>

#include "InfpLiveLinkSource.generated.h"

class ILiveLinkClient;
class FRunnableThread;

class INFPLIVELINK_API FInfpLiveLinkSource : public ILiveLinkSource, public FRunnable
{
public:
	FInfpLiveLinkSource(const FString& InEndpoint, const FString& InAgent, FName InSubject);
	virtual ~FInfpLiveLinkSource();

	// ILiveLinkSource
	virtual void ReceiveClient(ILiveLinkClient* InClient, FGuid InSourceGuid) override;
	virtual bool IsSourceStillValid() const override { return Thread != nullptr; }
	virtual bool RequestSourceShutdown() override;
	virtual FText GetSourceType() const override { return FText::FromString(TEXT("infp-sdk")); }
	virtual FText GetSourceMachineName() const override { return FText::FromString(Endpoint); }
	virtual FText GetSourceStatus() const override;

	// FRunnable
	virtual uint32 Run() override;
	virtual void Stop() override { bStopping = true; }

private:
	ILiveLinkClient* Client = nullptr;
	FGuid SourceGuid;
	FRunnableThread* Thread = nullptr;
	FThreadSafeBool bStopping = false;
	FString Endpoint;
	FString Agent;
	FName Subject;
	std::atomic<uint64> Frames{0};
	std::atomic<uint64> Dropped{0};
	std::atomic<uint64> Errors{0};
	std::atomic<bool> bHaveHello{false};
};

// "+ Source > infp-sdk" in the Live Link window. Connection string: "endpoint;agent;subject"
// (empty parts take the defaults tcp://127.0.0.1:5555, any agent, subject "infp").
UCLASS()
class INFPLIVELINK_API UInfpLiveLinkSourceFactory : public ULiveLinkSourceFactory
{
	GENERATED_BODY()
public:
	virtual FText GetSourceDisplayName() const override { return FText::FromString(TEXT("infp-sdk")); }
	virtual FText GetSourceTooltip() const override
	{
		return FText::FromString(TEXT("Motion of an infp-sdk agent over ZeroMQ (tcp://127.0.0.1:5555)"));
	}
	virtual EMenuType GetMenuType() const override { return EMenuType::MenuEntry; }
	virtual TSharedPtr<ILiveLinkSource> CreateSource(const FString& ConnectionString) const override;
};

UCLASS()
class INFPLIVELINK_API UInfpLiveLinkLibrary : public UBlueprintFunctionLibrary
{
	GENERATED_BODY()
public:
	// Add an infp-sdk source at run time (e.g. from a level Blueprint's BeginPlay).
	UFUNCTION(BlueprintCallable, Category = "infp-sdk")
	static bool AddInfpLiveLinkSource(const FString& Endpoint = TEXT("tcp://127.0.0.1:5555"),
	                                  const FString& Agent = TEXT(""), FName Subject = TEXT("infp"));
};
