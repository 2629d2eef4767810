using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.Linq;
using ChunkedAttention;
using RegionalGuidance;
using TorchSharp;
using static TorchSharp.torch;

// The seed's scenario at full size: a diffusion transformer block on a 64x64 latent with
// regional guidance and a control residual. Runs the block once with native SDPA and once
// chunked (what the guard does on MPS), reports the plan, the difference and the timings,
// and exits non-zero if chunked and native disagree.
return SampleProgram.Run(args);

internal static class SampleProgram
{
    private const double Tolerance = 1e-4; // fp32, through a whole block (attention alone is within 1e-5)

    public static int Run(string[] args)
    {
        SampleOptions options;
        try
        {
            options = SampleOptions.Parse(args);
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine(e.Message);
            Console.Error.WriteLine(SampleOptions.Usage);
            return 2;
        }
        if (options.Help)
        {
            Console.WriteLine(SampleOptions.Usage);
            return 0;
        }

        // The runtime reads these on every call, so flags and the environment work the same way.
        if (options.ForceChunk) Environment.SetEnvironmentVariable("CHUNKED_ATTENTION", "always");
        if (options.ChunkSize is int chunk) Environment.SetEnvironmentVariable("CHUNKED_ATTENTION_CHUNK_SIZE", chunk.ToString(CultureInfo.InvariantCulture));

        Device device = OpenDevice(options.Device);
        ChunkedAttentionOptions settings = RegionalGuidance.Attention.Settings; // what the generated wrapper runs with

        int batch = options.Batch;
        int headDim = Scenario.Channels / Scenario.Heads;
        Console.WriteLine("ChunkedAttention sample: regional guidance + control layer on a 64x64 latent");
        Console.WriteLine($"  block: {Scenario.Tokens} latent tokens x {Scenario.Channels} channels, {Scenario.Heads} heads of {headDim}, " +
                          $"prompt {Scenario.PromptTokens} tokens, regional mask ({batch}, 1, {Scenario.Tokens}, {Scenario.PromptTokens}), batch {batch}");
        Console.WriteLine($"  device: {device} (TorchSharp {typeof(torch).Assembly.GetName().Version?.ToString(3)}, {get_num_threads()} threads)");
        Console.WriteLine($"  [ChunkedAttention] on {nameof(RegionalGuidance.Attention)}: ChunkSize = {settings.ChunkSize}, " +
                          $"KeyChunkSize = {settings.KeyChunkSize}, Devices = {settings.Devices}, MaxScoreElements = {settings.MaxScoreElements}, TryNativeFirst = {settings.TryNativeFirst}");
        Console.WriteLine($"  environment: CHUNKED_ATTENTION = {Env("CHUNKED_ATTENTION")}, CHUNKED_ATTENTION_CHUNK_SIZE = {Env("CHUNKED_ATTENTION_CHUNK_SIZE")}");
        Console.WriteLine();

        using var selfQuery = empty(new long[] { batch, Scenario.Heads, Scenario.Tokens, headDim }, device: device);
        using var promptKey = empty(new long[] { batch, Scenario.Heads, Scenario.PromptTokens, headDim }, device: device);
        Console.WriteLine("Guard (what the generated wrapper decides here):");
        ReportDecision("self-attention ", selfQuery, selfQuery, settings);
        ReportDecision("cross-attention", selfQuery, promptKey, settings);
        Console.WriteLine();

        // What the chunked path does with these shapes, whatever the device (Plan ignores Devices and
        // honours CHUNKED_ATTENTION_CHUNK_SIZE, which --chunk-size sets).
        Console.WriteLine("Chunk plan (the path MPS takes):");
        ReportPlan("self-attention ", selfQuery, selfQuery, settings);
        ReportPlan("cross-attention", selfQuery, promptKey, settings);
        Console.WriteLine();

        using var noGrad = no_grad();
        using var block = new TransformerBlock(Scenario.Channels, Scenario.ContextChannels, Scenario.Heads);
        block.to(device).eval();
        using var scenario = Scenario.Create(batch, device, seed: 20240611);

        // Native and chunked runs alternate so both see the same machine state; medians reported.
        string? userMode = Environment.GetEnvironmentVariable("CHUNKED_ATTENTION");
        var nativeTimes = new List<double>();
        var chunkedTimes = new List<double>();
        Tensor? nativeOut = null, chunkedOut = null;
        try
        {
            for (int run = 0; run < options.Runs + 1; run++)
            {
                (Tensor n, double nt) = Timed(block, scenario, "off");
                (Tensor c, double ct) = Timed(block, scenario, "always");
                if (run == 0) // warm-up; keep its outputs for the comparison
                {
                    nativeOut = n;
                    chunkedOut = c;
                    continue;
                }
                n.Dispose();
                c.Dispose();
                nativeTimes.Add(nt);
                chunkedTimes.Add(ct);
            }
        }
        finally
        {
            Environment.SetEnvironmentVariable("CHUNKED_ATTENTION", userMode);
        }

        double diff = (chunkedOut! - nativeOut!).abs().max().ToDouble();
        bool finite = nativeOut!.isfinite().all().ToBoolean() && chunkedOut!.isfinite().all().ToBoolean();
        double native = Median(nativeTimes), chunked = Median(chunkedTimes);
        bool ok = finite && diff <= Tolerance;
        Console.WriteLine("Result (whole block, chunked vs native SDPA):");
        Console.WriteLine($"  max abs difference: {diff:E2} (tolerance {Tolerance:E0}) {(ok ? "OK" : "MISMATCH")}" +
                          (diff == 0 ? " (query chunks run native SDPA on row slices: bit-identical rows)" : ""));
        Console.WriteLine($"  time, median of {options.Runs}: native {native:F0} ms, chunked {chunked:F0} ms ({chunked / native:F2}x)");
        nativeOut.Dispose();
        chunkedOut!.Dispose();
        return ok ? 0 : 1;
    }

    private static (Tensor Output, double Milliseconds) Timed(TransformerBlock block, Scenario s, string mode)
    {
        Environment.SetEnvironmentVariable("CHUNKED_ATTENTION", mode);
        var clock = Stopwatch.StartNew();
        Tensor output = block.Forward(s.Latent, s.Prompt, s.RegionalMask, s.ControlResidual);
        using (Tensor total = output.sum()) total.ToDouble(); // a read forces completion on every device
        return (output, clock.Elapsed.TotalMilliseconds);
    }

    private static void ReportDecision(string name, Tensor query, Tensor key, ChunkedAttentionOptions settings)
    {
        // The runtime decides; the sample only names the reason: the sizes (Plan), then the device or the environment.
        bool chunk = ChunkedSdpa.ShouldChunk(query, key, settings);
        bool sizesSplit = ChunkedSdpa.Plan(query, key, settings).Chunked;
        long scores = query.shape[0] * query.shape[1] * query.shape[2] * key.shape[2];
        string? mode = Environment.GetEnvironmentVariable("CHUNKED_ATTENTION");
        string why = (sizesSplit, mode) switch
        {
            (false, _) => $"{query.shape[2]} query rows fit in one chunk",
            (_, "always" or "off") => $"CHUNKED_ATTENTION={mode}",
            _ when chunk => $"{query.device_type} is in Devices = {settings.Devices} and {query.shape[2]} rows > chunk",
            _ => $"{query.device_type} is not in Devices = {settings.Devices}",
        };
        Console.WriteLine($"  {name}: {(chunk ? "CHUNKED" : "native SDPA")} ({why}); one native call holds {scores:N0} scores = {Bytes(scores * 4)} in fp32 (MPS caps one array at 4 GiB)");
    }

    private static void ReportPlan(string name, Tensor query, Tensor key, ChunkedAttentionOptions options)
    {
        ChunkPlan plan = ChunkedSdpa.Plan(query, key, options);
        Console.WriteLine($"  {name}: {plan.QueryChunks} chunk(s) of {plan.QueryRows} rows x {plan.KeyBlocks} key block(s) of {plan.KeyRows}; " +
                          $"peak {plan.MaxScoreElements:N0} score elements per step ({Bytes(plan.MaxScoreElements * 4)} fp32)");
    }

    private static Device OpenDevice(string name)
    {
        switch (name)
        {
            case "cpu":
                return CPU;
            case "cuda" when !cuda.is_available():
                throw new InvalidOperationException("--device cuda: CUDA is not available (reference a libtorch CUDA backend package).");
            case "mps" when !mps_is_available():
                throw new InvalidOperationException("--device mps: MPS needs Apple Silicon and the libtorch-cpu-osx-arm64 backend.");
            default:
                return new Device(name);
        }
    }

    private static string Env(string name) => Environment.GetEnvironmentVariable(name) ?? "(unset)";

    private static double Median(List<double> values)
    {
        var sorted = values.OrderBy(v => v).ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }

    private static string Bytes(long bytes) => bytes >= 1L << 30
        ? $"{bytes / (double)(1L << 30):F2} GiB"
        : $"{bytes / (double)(1L << 20):F0} MiB";
}

internal sealed record SampleOptions(string Device, int? ChunkSize, bool ForceChunk, int Batch, int Runs, bool Help)
{
    public const string Usage =
        "usage: RegionalGuidance [--device cpu|cuda|mps] [--force-chunk] [--chunk-size N] [--batch N] [--runs N]\n" +
        "  --device       where to run (default cpu; mps on Apple Silicon with the osx-arm64 backend)\n" +
        "  --force-chunk  chunk on any device (same as CHUNKED_ATTENTION=always)\n" +
        "  --chunk-size   query rows per chunk (same as CHUNKED_ATTENTION_CHUNK_SIZE)\n" +
        "  --batch        batch size (default 2)\n" +
        "  --runs         timed runs after one warm-up (default 3)";

    public static SampleOptions Parse(string[] args)
    {
        var result = new SampleOptions("cpu", null, false, 2, 3, false);
        for (int i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
            int Positive(string flag, string text) => int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n > 0
                ? n
                : throw new ArgumentException($"{flag} takes a positive integer, not '{text}'.");

            result = args[i] switch
            {
                "--device" => result with { Device = Next().ToLowerInvariant() },
                "--force-chunk" => result with { ForceChunk = true },
                "--chunk-size" => result with { ChunkSize = Positive("--chunk-size", Next()) },
                "--batch" => result with { Batch = Positive("--batch", Next()) },
                "--runs" => result with { Runs = Positive("--runs", Next()) },
                "--help" or "-h" => result with { Help = true },
                _ => throw new ArgumentException($"Unknown argument '{args[i]}'."),
            };
        }
        return result;
    }
}
