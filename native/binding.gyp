{
  "targets": [
    {
      "target_name": "utkface_onednn",
      "sources": ["src/addon.cc"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-O3", "-fexceptions", "-fopenmp", "-ffp-contract=off", "-fno-math-errno"],
      "libraries": ["-ldnnl", "-lgomp"],
      "defines": ["NAPI_VERSION=8"]
    },
    {
      "target_name": "utkface_jpeg",
      "sources": ["src/jpeg.cc"],
      "cflags_cc": ["-std=c++17", "-O2"],
      "libraries": ["-ljpeg"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
