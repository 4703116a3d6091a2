-- yielder.lua - (spawned by caveats.lua) yields its own coroutine: an error.
coroutine.yield()
