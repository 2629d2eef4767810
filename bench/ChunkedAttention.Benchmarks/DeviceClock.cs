using System;
using System.Diagnostics;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace ChunkedAttention.Benchmarks;

/// <summary>
/// Times work on the benchmark's device. Kernel launches are asynchronous, so on CUDA the clock starts after
/// <c>torch.cuda.synchronize()</c> and stops after another: it measures the device's time for the work plus any
/// host time the device waited for. Short calls are timed as a batch of back-to-back calls (as a model makes them)
/// between the two synchronizations, divided by the batch size.
/// </summary>
internal sealed class DeviceClock
{
    public DeviceClock(Device device)
    {
        Device = device;
    }

    public Device Device { get; }

    public bool IsCuda => Device.type == DeviceType.CUDA;

    /// <summary>Waits for the device's queued work (no-op on the CPU, whose work is synchronous).</summary>
    public void Synchronize()
    {
        if (IsCuda)
        {
            cuda.synchronize();
        }
    }

    /// <summary>Milliseconds per call of <paramref name="reps"/> back-to-back calls, each output freed as it returns.</summary>
    public double Time(Func<Tensor> run, int reps)
    {
        Synchronize();
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < reps; i++)
        {
            using var output = run();
        }

        Synchronize();
        return clock.Elapsed.TotalMilliseconds / reps;
    }

    /// <summary>Calls per timed batch: enough that a batch lasts about <paramref name="batchMs"/> on a device, one on the CPU.</summary>
    public int RepsFor(double singleCallMs, double batchMs = 2.0) =>
        !IsCuda ? 1 : (int)Math.Clamp(Math.Ceiling(batchMs / Math.Max(singleCallMs, 1e-3)), 1, 200);
}

/// <summary>
/// Peak device memory on CUDA. TorchSharp 0.107 binds neither <c>torch.cuda.max_memory_allocated</c> nor
/// <c>reset_peak_memory_stats</c> (its CUDA surface is is_available, device_count, synchronize, manual_seed and the
/// SDP backend switches). So the benchmark runs its memory measurements in a child process started with
/// <c>PYTORCH_CUDA_ALLOC_CONF=backend:cudaMallocAsync</c>: PyTorch then allocates from the device's CUDA memory pool,
/// whose used-memory high-water mark (<c>CU_MEMPOOL_ATTR_USED_MEM_HIGH</c>, read and reset through the CUDA driver
/// API in libcuda) is what <c>max_memory_allocated</c> reports under that backend: bytes in live allocations, at
/// the pool's allocation granularity.
/// </summary>
internal static class CudaMemoryPool
{
    public const string AllocatorVariable = "PYTORCH_CUDA_ALLOC_CONF";
    public const string AsyncBackend = "backend:cudaMallocAsync";

    private const int UsedMemCurrent = 7; // CU_MEMPOOL_ATTR_USED_MEM_CURRENT
    private const int UsedMemHigh = 8;    // CU_MEMPOOL_ATTR_USED_MEM_HIGH

    private static IntPtr _pool;

    /// <summary>Whether this process allocates through the pool (the child's environment says so).</summary>
    public static bool InUse =>
        (Environment.GetEnvironmentVariable(AllocatorVariable) ?? string.Empty).Contains("cudaMallocAsync", StringComparison.Ordinal);

    /// <summary>Bytes in live allocations now.</summary>
    public static ulong CurrentBytes() => Read(UsedMemCurrent);

    /// <summary>The high-water mark since the last <see cref="ResetPeak"/>.</summary>
    public static ulong PeakBytes() => Read(UsedMemHigh);

    /// <summary>Resets the high-water mark to the bytes in use now.</summary>
    public static void ResetPeak()
    {
        ulong zero = 0;
        Check(cuMemPoolSetAttribute(Pool(), UsedMemHigh, ref zero), "cuMemPoolSetAttribute(USED_MEM_HIGH)");
    }

    private static ulong Read(int attribute)
    {
        ulong value = 0;
        Check(cuMemPoolGetAttribute(Pool(), attribute, ref value), "cuMemPoolGetAttribute");
        return value;
    }

    private static IntPtr Pool()
    {
        if (_pool == IntPtr.Zero)
        {
            Check(cuInit(0), "cuInit");
            Check(cuDeviceGet(out var device, 0), "cuDeviceGet");
            Check(cuDeviceGetMemPool(out _pool, device), "cuDeviceGetMemPool");
        }

        return _pool;
    }

    private static void Check(int result, string call)
    {
        if (result != 0)
        {
            throw new InvalidOperationException($"{call} failed with CUDA driver error {result}");
        }
    }

    [DllImport("libcuda.so.1")]
    private static extern int cuInit(uint flags);

    [DllImport("libcuda.so.1")]
    private static extern int cuDeviceGet(out int device, int ordinal);

    [DllImport("libcuda.so.1")]
    private static extern int cuDeviceGetMemPool(out IntPtr pool, int device);

    [DllImport("libcuda.so.1")]
    private static extern int cuMemPoolGetAttribute(IntPtr pool, int attribute, ref ulong value);

    [DllImport("libcuda.so.1")]
    private static extern int cuMemPoolSetAttribute(IntPtr pool, int attribute, ref ulong value);
}
