using ChunkedAttention.Masking;
using Xunit;
using static TorchSharp.torch;

namespace ChunkedAttention.Runtime.Tests;

/// <summary>
/// The once-per-call conversion of a Float32 mask to a half query's dtype (done off the CPU, where cuDNN returns NaN
/// for the mix; the equality suite covers the CPU paths, tools/DeviceCheck the CUDA ones).
/// </summary>
public class MaskPreparationTests
{
    [Theory]
    [InlineData(ScalarType.Float16, 65504.0)]
    [InlineData(ScalarType.BFloat16, 3.3895313892515355e38)]
    public void Float32MaskToHalfClampsFiniteValuesAndKeepsInfinitiesAndNaN(ScalarType dtype, double largest)
    {
        using var scope = NewDisposeScope();
        var mask = tensor(new[] { -1e9f, -float.MaxValue, float.NegativeInfinity, float.NaN, 1e5f, 0.5f, float.PositiveInfinity });
        var converted = CallMask.ToDType(mask, dtype);
        Assert.Equal(dtype, converted.dtype);
        var values = converted.to(ScalarType.Float64).data<double>().ToArray();
        Assert.Equal(dtype == ScalarType.Float16 ? -largest : -1e9, values[0], dtype == ScalarType.Float16 ? 0 : 1e7);
        Assert.Equal(-largest, values[1], largest * 1e-6);
        Assert.True(double.IsNegativeInfinity(values[2]));
        Assert.True(double.IsNaN(values[3]));
        Assert.Equal(dtype == ScalarType.Float16 ? largest : 1e5, values[4], dtype == ScalarType.Float16 ? 0 : 1e3);
        Assert.Equal(0.5, values[5]);
        Assert.True(double.IsPositiveInfinity(values[6]));
    }
}
