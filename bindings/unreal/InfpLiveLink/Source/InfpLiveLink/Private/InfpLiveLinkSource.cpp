// The engine-specific layer over the infp-sdk C++ client: a receive thread and Live Link pushes.
// Decoding, bounds and drop counting are the client's (tested in CI against the conformance
// vectors under AddressSanitizer); nothing here parses bytes.
#include "InfpLiveLinkSource.h"

#include "Features/IModularFeatures.h"
#include "HAL/RunnableThread.h"
#include "ILiveLinkClient.h"
#include "LiveLinkTypes.h"
#include "Roles/LiveLinkBasicRole.h"
#include "Roles/LiveLinkBasicTypes.h"

#if PLATFORM_WINDOWS
#include "Windows/AllowWindowsPlatformTypes.h"
#endif
#pragma push_macro("check")
#pragma push_macro("verify")
#undef check
#undef verify
THIRD_PARTY_INCLUDES_START
#include "infp/client.hpp"
THIRD_PARTY_INCLUDES_END
#pragma pop_macro("verify")
#pragma pop_macro("check")
#if PLATFORM_WINDOWS
#include "Windows/HideWindowsPlatformTypes.h"
#endif

#include <cmath>
#include <string>

namespace
{
const TCHAR* ExtraCurves[] = {TEXT("HeadYaw"),      TEXT("HeadPitch"),     TEXT("HeadRoll"),
                              TEXT("LeftEyeYaw"),   TEXT("LeftEyePitch"),  TEXT("LeftEyeRoll"),
                              TEXT("RightEyeYaw"),  TEXT("RightEyePitch"), TEXT("RightEyeRoll")};

// "eyeBlinkLeft" -> "EyeBlinkLeft", as Live Link Face (and Unreal's EARFaceBlendShape) names it.
FName CurveName(const std::string& Name)
{
	FString S = UTF8_TO_TCHAR(Name.c_str());
	if (!S.IsEmpty()) S[0] = FChar::ToUpper(S[0]);
	return FName(*S);
}
}  // namespace

FInfpLiveLinkSource::FInfpLiveLinkSource(const FString& InEndpoint, const FString& InAgent, FName InSubject)
	: Endpoint(InEndpoint), Agent(InAgent), Subject(InSubject)
{
}

FInfpLiveLinkSource::~FInfpLiveLinkSource()
{
	RequestSourceShutdown();
}

void FInfpLiveLinkSource::ReceiveClient(ILiveLinkClient* InClient, FGuid InSourceGuid)
{
	Client = InClient;
	SourceGuid = InSourceGuid;
	Thread = FRunnableThread::Create(this, TEXT("infp-sdk Live Link"), 0, TPri_AboveNormal);
}

bool FInfpLiveLinkSource::RequestSourceShutdown()
{
	Stop();
	if (Thread != nullptr)
	{
		Thread->WaitForCompletion();
		delete Thread;
		Thread = nullptr;
	}
	return true;
}

FText FInfpLiveLinkSource::GetSourceStatus() const
{
	if (Frames.load() == 0)
		return FText::FromString(bHaveHello.load() ? TEXT("hello received, waiting for motion") : TEXT("waiting for the publisher"));
	return FText::FromString(FString::Printf(TEXT("%llu frames, %llu dropped, %llu errors"),
		(unsigned long long)Frames.load(), (unsigned long long)Dropped.load(), (unsigned long long)Errors.load()));
}

uint32 FInfpLiveLinkSource::Run()
{
	infp::Client Zmq;
	std::string Error;
	if (!Zmq.connect(TCHAR_TO_UTF8(*Endpoint), TCHAR_TO_UTF8(*Agent), &Error))
	{
		UE_LOG(LogTemp, Error, TEXT("infp-sdk: %s"), UTF8_TO_TCHAR(Error.c_str()));
		return 1;
	}
	const FLiveLinkSubjectKey Key(SourceGuid, Subject);
	TArray<FName> Names;  // the curves last announced to Live Link
	while (!bStopping)
	{
		const infp::Event Event = Zmq.poll(100);
		if (Event == infp::Event::Hello)
		{
			const infp::Hello& Hello = *Zmq.hello();
			TArray<FName> New;
			for (const std::string& Name : Hello.blendshapes) New.Add(CurveName(Name));
			for (const TCHAR* Name : ExtraCurves) New.Add(FName(Name));
			if (New != Names)  // hello repeats every 2 s: announce the curves only when they change
			{
				Names = New;
				FLiveLinkStaticDataStruct Static(FLiveLinkBaseStaticData::StaticStruct());
				Static.Cast<FLiveLinkBaseStaticData>()->PropertyNames = MoveTemp(New);
				Client->PushSubjectStaticData_AnyThread(Key, ULiveLinkBasicRole::StaticClass(), MoveTemp(Static));
			}
			bHaveHello = true;
		}
		else if (Event == infp::Event::Motion && bHaveHello)
		{
			const infp::Motion& M = Zmq.motion();
			const size_t Count = Zmq.hello()->blendshapes.size();
			if (M.blendshapes.size() != Count) continue;  // a frame from before a new hello
			FLiveLinkFrameDataStruct Frame(FLiveLinkBaseFrameData::StaticStruct());
			FLiveLinkBaseFrameData& Data = *Frame.Cast<FLiveLinkBaseFrameData>();
			Data.WorldTime = FPlatformTime::Seconds();
			const double Fps = Zmq.hello()->fps > 0 ? Zmq.hello()->fps : 25.0;
			Data.MetaData.SceneTime = FQualifiedFrameTime(FFrameTime(int32(M.index)), FFrameRate(int32(std::lround(Fps)), 1));
			Data.PropertyValues.Reserve(int32(Count) + 9);
			for (float W : M.blendshapes) Data.PropertyValues.Add(W);
			const float Pi = 3.14159265f;  // angles / pi, as Live Link Face sends them
			const float Angles[9] = {M.head[0], M.head[1], M.head[2], M.gaze[0], M.gaze[1], 0.f, M.gaze[2], M.gaze[3], 0.f};
			for (float A : Angles) Data.PropertyValues.Add(A / Pi);
			Client->PushSubjectFrameData_AnyThread(Key, MoveTemp(Frame));
			++Frames;
		}
		else if (Event == infp::Event::Error)
		{
			++Errors;
		}
		Dropped = Zmq.dropped();
	}
	return 0;
}

TSharedPtr<ILiveLinkSource> UInfpLiveLinkSourceFactory::CreateSource(const FString& ConnectionString) const
{
	TArray<FString> Parts;
	ConnectionString.ParseIntoArray(Parts, TEXT(";"), false);
	auto Part = [&Parts](int32 I, const TCHAR* Default) {
		return Parts.IsValidIndex(I) && !Parts[I].TrimStartAndEnd().IsEmpty() ? Parts[I].TrimStartAndEnd() : FString(Default);
	};
	return MakeShared<FInfpLiveLinkSource>(Part(0, TEXT("tcp://127.0.0.1:5555")), Part(1, TEXT("")),
	                                      FName(*Part(2, TEXT("infp"))));
}

bool UInfpLiveLinkLibrary::AddInfpLiveLinkSource(const FString& Endpoint, const FString& Agent, FName Subject)
{
	IModularFeatures& Features = IModularFeatures::Get();
	if (!Features.IsModularFeatureAvailable(ILiveLinkClient::ModularFeatureName)) return false;
	ILiveLinkClient& LiveLink = Features.GetModularFeature<ILiveLinkClient>(ILiveLinkClient::ModularFeatureName);
	return LiveLink.AddSource(MakeShared<FInfpLiveLinkSource>(Endpoint, Agent, Subject)).IsValid();
}
