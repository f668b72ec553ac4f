// FunctionRef<R(Args...)>: a non-owning reference to a callable, for callbacks
// that are only called during the call they are passed to (a std::function
// would copy and type-erase the callable on every call of a hot path).
// The callable must outlive the FunctionRef: pass it as an argument, never
// store it.
#ifndef IQDB_PERSIST_SRC_UTIL_FUNCTION_REF_H_
#define IQDB_PERSIST_SRC_UTIL_FUNCTION_REF_H_

#include <memory>
#include <type_traits>
#include <utility>

namespace iqdb::persist {

template <class Signature>
class FunctionRef;

template <class R, class... Args>
class FunctionRef<R(Args...)> {
 public:
  // (enable_if rather than a requires-clause: clang-tidy 14 sees only the
  // former as keeping this from hiding the copy and move constructors.)
  template <class F,
            class = std::enable_if_t<!std::is_same_v<std::remove_cvref_t<F>, FunctionRef> &&
                                     std::is_invocable_r_v<R, F&, Args...>>>
  // NOLINTNEXTLINE(google-explicit-constructor): stands in for the callable itself.
  FunctionRef(F&& callable)
      : callable_(const_cast<void*>(static_cast<const void*>(std::addressof(callable)))),
        call_([](void* target, Args... args) -> R {
          return (*static_cast<std::remove_reference_t<F>*>(target))(std::forward<Args>(args)...);
        }) {}

  R operator()(Args... args) const { return call_(callable_, std::forward<Args>(args)...); }

 private:
  void* callable_;
  R (*call_)(void*, Args...);
};

}  // namespace iqdb::persist

#endif  // IQDB_PERSIST_SRC_UTIL_FUNCTION_REF_H_
