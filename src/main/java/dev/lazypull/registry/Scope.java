package dev.lazypull.registry;

import java.util.Collections;
import java.util.Set;
import java.util.TreeSet;

/**
 * Token scopes ({@code repository:<name>:pull[,push]}), kept sorted so equal sets make equal cache
 * keys. A challenge's {@code scope} attribute may hold several space-separated scopes; each is sent
 * as its own {@code scope=} parameter.
 */
record Scope(Set<String> items) {
  public Scope {
    items = Collections.unmodifiableSortedSet(new TreeSet<>(items));
  }

  public static Scope pull(String repository) {
    return new Scope(Set.of("repository:" + repository + ":pull"));
  }

  public static Scope push(String repository) {
    return new Scope(Set.of("repository:" + repository + ":pull,push"));
  }

  /** This scope plus every space-separated scope in {@code attribute} (null: unchanged). */
  public Scope plus(String attribute) {
    if (attribute == null || attribute.isBlank()) {
      return this;
    }
    Set<String> s = new TreeSet<>(items);
    for (String part : attribute.trim().split("\\s+")) {
      s.add(part);
    }
    return new Scope(s);
  }

  public Scope plus(Scope other) {
    Set<String> s = new TreeSet<>(items);
    s.addAll(other.items);
    return new Scope(s);
  }

  @Override
  public String toString() {
    return String.join(" ", items);
  }
}
