using System;

namespace ChunkedAttention;

/// <summary>The device types on which chunking applies.</summary>
[Flags]
public enum AttentionDevices
{
    /// <summary>No device: never chunk.</summary>
    None = 0,

    /// <summary>CPU tensors.</summary>
    Cpu = 1,

    /// <summary>CUDA tensors.</summary>
    Cuda = 2,

    /// <summary>Apple Silicon (Metal Performance Shaders) tensors.</summary>
    Mps = 4,

    /// <summary>Every device.</summary>
    All = Cpu | Cuda | Mps,
}
