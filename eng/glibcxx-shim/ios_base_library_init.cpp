// Build-only shim for TorchSharp 0.107 on systems whose libstdc++ predates GCC 13.
//
// libLibTorchSharp.so was built with GCC 13, whose <iostream> no longer puts a static
// std::ios_base::Init in every translation unit; it calls std::ios_base_library_init()
// (GLIBCXX_3.4.32) instead, so the standard streams are set up inside libstdc++.
// Older libstdc++ lacks that symbol. This library provides it and does the same job:
// constructing an ios_base::Init guarantees cout/cerr/... are initialised.
#include <ios>

namespace std
{
    void ios_base_library_init()
    {
        static ios_base::Init init;
    }
}
