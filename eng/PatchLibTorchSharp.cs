// MSBuild inline task (see TorchSharpNativeFix.targets): lets TorchSharp's native library load
// on a libstdc++ older than GCC 13. Build-only; never part of the shipped package.
#nullable enable
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Text;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

public sealed class PatchLibTorchSharp : Task
{
    private const string MissingVersion = "GLIBCXX_3.4.32";
    private const string MissingSymbol = "_ZSt21ios_base_library_initv"; // std::ios_base_library_init()
    private const string ShimName = "libchunkedattention_glibcxx_shim.so";
    private const ushort VerFlagWeak = 0x2;
    private const uint ShtGnuVerneed = 0x6ffffffe;
    private const uint ShtDynamic = 6;
    private const long DtNeeded = 1;

    [Required] public ITaskItem[] Libraries { get; set; } = Array.Empty<ITaskItem>();
    [Required] public string ShimSource { get; set; } = "";
    [Required] public string WorkDirectory { get; set; } = "";

    public override bool Execute()
    {
        string? systemLibStdCxx = FindSystemLibStdCxx();
        if (systemLibStdCxx != null && FileContains(systemLibStdCxx, MissingVersion))
        {
            Log.LogMessage(MessageImportance.Low, $"{systemLibStdCxx} provides {MissingVersion}; libLibTorchSharp.so needs no patch.");
            return true;
        }

        foreach (ITaskItem item in Libraries)
        {
            string library = Path.GetFullPath(item.ItemSpec);
            if (!PatchOne(library))
                return false;
        }
        return !Log.HasLoggedErrors;
    }

    private bool PatchOne(string library)
    {
        byte[] image = File.ReadAllBytes(library);
        Elf elf;
        try { elf = new Elf(image); }
        catch (Exception e) { Log.LogError($"Cannot read {library} as ELF64: {e.Message}"); return false; }

        int? auxOffset = elf.FindVersionNeedAux(MissingVersion);
        if (auxOffset == null)
        {
            Log.LogMessage(MessageImportance.Low, $"{library} does not need {MissingVersion}; nothing to patch.");
            return true;
        }

        string shimBeside = Path.Combine(Path.GetDirectoryName(library)!, ShimName);
        bool hasNeeded = elf.NeededLibraries().Contains(ShimName);
        bool isWeak = (BitConverter.ToUInt16(image, auxOffset.Value + 4) & VerFlagWeak) != 0;
        if (hasNeeded && isWeak && File.Exists(shimBeside))
            return true; // already patched

        string? shim = BuildShim();
        if (shim == null) return false;
        File.Copy(shim, shimBeside, overwrite: true);

        if (!hasNeeded)
        {
            if (!EnsurePatchelf()) return false;
            if (!Run("patchelf", $"--clear-symbol-version {MissingSymbol} --add-needed {ShimName} \"{library}\"", out string output))
            {
                Log.LogError($"patchelf failed on {library}: {output}");
                return false;
            }
            image = File.ReadAllBytes(library);
            elf = new Elf(image);
            auxOffset = elf.FindVersionNeedAux(MissingVersion)!;
        }

        ushort flags = BitConverter.ToUInt16(image, auxOffset.Value + 4);
        if ((flags & VerFlagWeak) == 0)
        {
            using var stream = new FileStream(library, FileMode.Open, FileAccess.Write);
            stream.Position = auxOffset.Value + 4;
            stream.Write(BitConverter.GetBytes((ushort)(flags | VerFlagWeak)), 0, 2);
        }

        Log.LogMessage(MessageImportance.High, $"Patched {library} so TorchSharp loads without {MissingVersion}.");
        return true;
    }

    private string? BuildShim()
    {
        Directory.CreateDirectory(WorkDirectory);
        string output = Path.Combine(WorkDirectory, ShimName);
        if (File.Exists(output) && File.GetLastWriteTimeUtc(output) >= File.GetLastWriteTimeUtc(ShimSource))
            return output;

        // Compile to a private name first so parallel builds never see a half-written file.
        string temporary = output + "." + Guid.NewGuid().ToString("N") + ".tmp";
        if (!Run("g++", $"-shared -fPIC -O2 -o \"{temporary}\" \"{ShimSource}\"", out string log))
        {
            Log.LogError($"Could not compile the TorchSharp libstdc++ shim with g++ (install g++: apt-get install g++). {log}");
            return null;
        }
        File.Copy(temporary, output, overwrite: true);
        File.Delete(temporary);
        return output;
    }

    private bool EnsurePatchelf()
    {
        if (Run("patchelf", "--version", out _))
            return true;

        // Root on Debian/Ubuntu: install the one Debian package this fix needs.
        if (Run("id", "-u", out string uid) && uid.Trim() == "0" && File.Exists("/usr/bin/apt-get"))
        {
            Log.LogMessage(MessageImportance.High, "Installing patchelf (apt-get) to patch libLibTorchSharp.so.");
            if (!Run("apt-get", "install -y -q patchelf", out _))
            {
                Run("apt-get", "update -q", out _);
                Run("apt-get", "install -y -q patchelf", out _);
            }
            if (Run("patchelf", "--version", out _))
                return true;
        }

        Log.LogError("TorchSharp needs " + MissingVersion + ", which this system's libstdc++ lacks. " +
            "The build patches its copy of libLibTorchSharp.so with patchelf, which is not installed: run 'sudo apt-get install patchelf'.");
        return false;
    }

    private static string? FindSystemLibStdCxx()
    {
        if (Run("/sbin/ldconfig", "-p", out string cache) || Run("ldconfig", "-p", out cache))
        {
            foreach (string line in cache.Split('\n'))
            {
                int arrow = line.IndexOf("=>", StringComparison.Ordinal);
                if (line.TrimStart().StartsWith("libstdc++.so.6 ", StringComparison.Ordinal) && arrow > 0 && line.Contains("x86-64"))
                    return line.Substring(arrow + 2).Trim();
            }
        }
        foreach (string candidate in new[] { "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/lib/x86_64-linux-gnu/libstdc++.so.6", "/usr/lib64/libstdc++.so.6", "/usr/lib/libstdc++.so.6" })
        {
            if (File.Exists(candidate)) return candidate;
        }
        return null;
    }

    private static bool FileContains(string path, string text)
    {
        byte[] needle = Encoding.ASCII.GetBytes(text + "\0");
        byte[] haystack = File.ReadAllBytes(path);
        return IndexOf(haystack, needle, 0) >= 0;
    }

    private static int IndexOf(byte[] haystack, byte[] needle, int start)
    {
        for (int i = start; i <= haystack.Length - needle.Length; i++)
        {
            int j = 0;
            while (j < needle.Length && haystack[i + j] == needle[j]) j++;
            if (j == needle.Length) return i;
        }
        return -1;
    }

    private static bool Run(string file, string arguments, out string output)
    {
        try
        {
            var info = new ProcessStartInfo(file, arguments)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            info.Environment["DEBIAN_FRONTEND"] = "noninteractive";
            using Process process = Process.Start(info)!;
            var stderr = process.StandardError.ReadToEndAsync();
            output = process.StandardOutput.ReadToEnd();
            process.WaitForExit();
            output += stderr.Result;
            return process.ExitCode == 0;
        }
        catch (Exception e)
        {
            output = e.Message;
            return false;
        }
    }

    /// <summary>Just enough ELF64 little-endian reading to find version needs and DT_NEEDED.</summary>
    private sealed class Elf
    {
        private readonly byte[] _image;
        private readonly List<(uint Type, long Offset, long Size, int Link)> _sections = new();

        public Elf(byte[] image)
        {
            _image = image;
            if (image.Length < 64 || image[0] != 0x7f || image[1] != (byte)'E' || image[2] != (byte)'L' || image[3] != (byte)'F')
                throw new InvalidDataException("not an ELF file");
            if (image[4] != 2 || image[5] != 1)
                throw new InvalidDataException("not 64-bit little-endian");
            long sectionHeaders = BitConverter.ToInt64(image, 0x28);
            int entrySize = BitConverter.ToUInt16(image, 0x3A);
            int count = BitConverter.ToUInt16(image, 0x3C);
            for (int i = 0; i < count; i++)
            {
                int header = checked((int)(sectionHeaders + (long)i * entrySize));
                _sections.Add((BitConverter.ToUInt32(image, header + 4), BitConverter.ToInt64(image, header + 0x18),
                    BitConverter.ToInt64(image, header + 0x20), (int)BitConverter.ToUInt32(image, header + 0x28)));
            }
        }

        public int? FindVersionNeedAux(string versionName)
        {
            foreach (var section in _sections)
            {
                if (section.Type != ShtGnuVerneed) continue;
                long strings = _sections[section.Link].Offset;
                long entry = section.Offset;
                while (true)
                {
                    int auxCount = BitConverter.ToUInt16(_image, (int)entry + 2);
                    long aux = entry + BitConverter.ToUInt32(_image, (int)entry + 8);
                    for (int i = 0; i < auxCount; i++)
                    {
                        if (ReadString(strings + BitConverter.ToUInt32(_image, (int)aux + 8)) == versionName)
                            return (int)aux;
                        aux += BitConverter.ToUInt32(_image, (int)aux + 12);
                    }
                    uint next = BitConverter.ToUInt32(_image, (int)entry + 12);
                    if (next == 0) break;
                    entry += next;
                }
            }
            return null;
        }

        public HashSet<string> NeededLibraries()
        {
            var needed = new HashSet<string>(StringComparer.Ordinal);
            foreach (var section in _sections)
            {
                if (section.Type != ShtDynamic) continue;
                long strings = _sections[section.Link].Offset;
                for (long entry = section.Offset; entry + 16 <= section.Offset + section.Size; entry += 16)
                {
                    long tag = BitConverter.ToInt64(_image, (int)entry);
                    if (tag == 0) break;
                    if (tag == DtNeeded)
                        needed.Add(ReadString(strings + BitConverter.ToInt64(_image, (int)entry + 8)));
                }
            }
            return needed;
        }

        private string ReadString(long offset)
        {
            int end = (int)offset;
            while (_image[end] != 0) end++;
            return Encoding.ASCII.GetString(_image, (int)offset, end - (int)offset);
        }
    }
}
